# Shared settings for the owncard scripts (sourced, not run).
# owncard = p11card's own simulated PIV card, or with OWNCARD_APP=openpgp its
# simulated OpenPGP card (crate p11card-cardsim, binary cardsim-vpcd), in the
# vpcd reader of the real pcscd; same interface as ../shared/virtpiv and
# ../shared/virtpgp (start.sh / provision.sh / stop.sh, run dir, state dir).
OWNCARD_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OWNCARD_REPO="$(cd "$OWNCARD_HOME/../../.." && pwd)"
TMPBASE="${TMPDIR:-/tmp}"
# Which card: piv (SimPivCard) or openpgp (SimOpenPgpCard).
OWNCARD_APP="${OWNCARD_APP:-piv}"
case "$OWNCARD_APP" in
    piv)
        # VIRTPIV_* (what a suite runner exports for whichever PIV card it
        # runs) win over the owncard defaults.
        _owncard_run_default="${VIRTPIV_RUN_DIR:-$TMPBASE/owncard-run}"
        _owncard_state_default="${VIRTPIV_STATE_DIR:-$TMPBASE/owncard-state}"
        _owncard_out_env="${VIRTPIV_OUT:-}"
        _owncard_port_default=35963
        # The card's ATR (cardsim's default: a YubiKey 4), to tell it from
        # another card; OWNCARD_PIV_ATR gives the card another one (--atr).
        OWNCARD_ATR="${OWNCARD_PIV_ATR:-3b:f8:13:00:00:81:31:fe:15:59:75:62:69:6b:65:79:34:d4}"
        OWNCARD_SELECT="00:A4:04:00:09:A0:00:00:03:08:00:00:10:00"
        OWNCARD_VERIFY_PIN="00:20:00:80:08:31:32:33:34:35:36:FF:FF"
        OWNCARD_KEY_NAMES="9a 9c 9d 9e"
        ;;
    openpgp)
        # The OpenPGP card has its own run and state dirs (so that both cards
        # can run at once), and VIRTPGP_* stand for VIRTPIV_*.
        _owncard_run_default="${VIRTPGP_RUN_DIR:-$TMPBASE/owncard-openpgp-run}"
        _owncard_state_default="${VIRTPGP_STATE_DIR:-$TMPBASE/owncard-openpgp-state}"
        _owncard_out_env="${VIRTPGP_OUT:-}"
        _owncard_port_default=35964
        # cardsim's OpenPGP ATR (DEFAULT_OPENPGP_ATR; in no OpenSC ATR table).
        OWNCARD_ATR="3b:da:18:ff:81:b1:fe:75:1f:03:00:31:c5:73:c0:01:c0:05:90:00:89"
        OWNCARD_SELECT="00:A4:04:00:06:D2:76:00:01:24:01"
        OWNCARD_VERIFY_PIN="00:20:00:82:06:31:32:33:34:35:36"
        OWNCARD_KEY_NAMES="sig dec aut"
        ;;
    *)
        echo "owncard: OWNCARD_APP must be piv or openpgp, not '$OWNCARD_APP'" >&2
        exit 2
        ;;
esac
# Pid files, logs and the APDU trace.
OWNCARD_RUN_DIR="${OWNCARD_RUN_DIR:-$_owncard_run_default}"
# The card keeps no state (every start is the same factory card); the state
# dir only holds the public material, under provisioned/. "none" (as for
# virtpiv) puts it under the run dir instead.
OWNCARD_STATE_DIR="${OWNCARD_STATE_DIR:-$_owncard_state_default}"
if [ "$OWNCARD_STATE_DIR" = none ]; then
    OWNCARD_OUT="${OWNCARD_OUT:-${_owncard_out_env:-$OWNCARD_RUN_DIR/provisioned}}"
else
    OWNCARD_OUT="${OWNCARD_OUT:-${_owncard_out_env:-$OWNCARD_STATE_DIR/provisioned}}"
fi
# vpcd port: 35963 = reader "Virtual PCD 00 00", 35964 = "Virtual PCD 00 01".
OWNCARD_VPCD_PORT="${OWNCARD_VPCD_PORT:-$_owncard_port_default}"
case "$OWNCARD_VPCD_PORT" in
    35963) _owncard_reader_default="Virtual PCD 00 00" ;;
    35964) _owncard_reader_default="Virtual PCD 00 01" ;;
    *) _owncard_reader_default="Virtual PCD 00 00" ;;
esac
OWNCARD_READER="${OWNCARD_READER:-$_owncard_reader_default}"
# Cargo target dir of the workspace (for the cardsim-vpcd binary).
OWNCARD_TARGET="${CARGO_TARGET_DIR:-$OWNCARD_REPO/target}"
OPENSC_PKCS11="${OPENSC_PKCS11:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}"
T_CMD="${T_CMD:-20}"   # seconds for one quick external command

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs Debian packages that are missing (apt-get update only if needed).
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        timeout "$T_CMD" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "owncard: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 as_root apt-get install -y -q "${missing[@]}" >&2 || {
        timeout 300 as_root apt-get update -q >&2 &&
            timeout 600 as_root apt-get install -y -q "${missing[@]}" >&2
    }
}

# True if process $1 is gone or a zombie (an exited child nobody reaped yet).
pid_gone() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"
    [ "${stat%% *}" = Z ]
}

# True if pid file $1 names a live (not zombie) process whose command name is $2.
pid_alive() {
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1" 2>/dev/null)"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && ! pid_gone "$pid"
}

# True if a live pcscd runs (zombies and a pcscd that is exiting do not count).
other_pcscd_running() {
    local p
    for p in $(timeout "$T_CMD" pidof pcscd 2>/dev/null); do
        pid_gone "$p" || return 0
    done
    return 1
}

# The ATR of the card in the reader (lower-case hex with colons), or nothing.
reader_atr() {
    timeout "$T_CMD" opensc-tool -r "$OWNCARD_READER" -a 2>/dev/null | tr 'A-F ' 'a-f:' | grep -E '^[0-9a-f:]+$' | tail -n 1
}

# True if a card is present in the reader.
card_present() {
    timeout "$T_CMD" opensc-tool -r "$OWNCARD_READER" -a >/dev/null 2>&1
}

# True if pcscd lists the vpcd reader (either of its slots).
vpcd_reader_listed() {
    local base="${OWNCARD_READER% 00 0[0-9]}"
    timeout "$T_CMD" opensc-tool -l 2>/dev/null | grep -qF "$base"
}
