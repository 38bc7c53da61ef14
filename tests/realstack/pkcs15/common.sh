# Shared settings for the simulated MyEID card scripts (sourced, not run).
# The card: p11card-cardsim's SimMyEidCard (cardsim-vpcd --app myeid) in a
# vpcd reader of its own, "Virtual PCD MyEID 00 00", at TCP port 35965
# (0x8C7D; vpcd's standard readers 35963/35964 are the PIV and OpenPGP
# cards'). pcscd learns that reader from a reader.conf.d directory start.sh
# writes (pcscd --config DIR), so start.sh starts its own pcscd.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../owncard/common.sh"
PKCS15_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMPBASE="${TMPDIR:-/tmp}"
# Pid files, logs, apdu.log, the live card image.
MYEID_RUN_DIR="${MYEID_RUN_DIR:-${VIRTPIV_RUN_DIR:-$TMPBASE/myeid-run}}"
MYEID_VPCD_PORT="${MYEID_VPCD_PORT:-35965}"
MYEID_FRIENDLYNAME="Virtual PCD MyEID"
# The card image the running card loads and keeps up to date.
MYEID_IMAGE="${MYEID_IMAGE:-$MYEID_RUN_DIR/card.image}"
# The card personalised by personalise.sh (committed): what start.sh copies
# to $MYEID_IMAGE unless --factory.
MYEID_PERSONALISED="${MYEID_PERSONALISED:-$PKCS15_HOME/myeid-personalised.image}"
# The card's ATR (SimMyEidCard's MYEID_ATR: historical bytes "MyEID").
MYEID_ATR="3b:f5:18:00:00:81:31:fe:45:4d:79:45:49:44:9a"
MYEID_PCSCD_PID="$MYEID_RUN_DIR/myeid-pcscd.pid"
MYEID_CARD_PID="$MYEID_RUN_DIR/cardsim-vpcd.pid"

# The full name of our reader as pcscd lists it, or nothing.
myeid_reader() {
    timeout "$T_CMD" opensc-tool -l 2>/dev/null | grep -F "$MYEID_FRIENDLYNAME" | head -n 1 |
        sed -E 's/^[0-9]+ +[A-Za-z]+ +//'
}

# True if the card is present in our reader.
myeid_card_present() {
    local reader
    reader="$(myeid_reader)"
    [ -n "$reader" ] && timeout "$T_CMD" opensc-tool -r "$reader" -a >/dev/null 2>&1
}
