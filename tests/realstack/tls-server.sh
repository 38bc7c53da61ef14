# A local TLS server that requires and verifies a client certificate issued
# by the card's CA, and answers with the client certificate it saw
# (openssl s_server -www). Sourced by the TLS suites.

# start_tls_server: sets TLS_PORT and SERVER_CA (the server's own
# certificate, for the client to trust); stops the server at the end.
start_tls_server() {
    if [ ! -f "$WORK/server.pem" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -keyout "$WORK/server.key" -out "$WORK/server.pem" -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1
    fi
    SERVER_CA="$WORK/server.pem"
    TLS_PORT="$(free_port)"
    timeout 600 openssl s_server -accept "$TLS_PORT" -cert "$WORK/server.pem" -key "$WORK/server.key" \
        -CAfile "$PROV/ca.pem" -Verify 1 -verify_return_error -www >"$WORK/s_server-$TLS_PORT.log" 2>&1 &
    local pid=$!
    on_exit stop_pid "$pid"
    wait_port "$TLS_PORT"
}
