#!/usr/bin/env bash
# OPC UA security of the `opcua` input against node-opcua with security
# (tests/opcua/secure_server.js, node-opcua pinned as in run_opcua.sh):
#  1. an unknown client certificate is rejected by the server (clear error
#     saying to trust it); the generated certificate is logged once and kept
#     in certificate_dir;
#  2. once trusted: Sign and SignAndEncrypt with Basic256Sha256,
#     Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss deliver the counter;
#  3. unset securityMode/securityPolicy: the most secure endpoint is chosen
#     and logged; serverCertificateFingerprint match and mismatch; insecure
#     warns;
#  4. username/password sent encrypted: accepted and rejected (also on the
#     None endpoint); user certificate identity accepted once trusted,
#     rejected before; clientCertificate from the config;
#  5. a subscription across several secure channel renewals (3 s token
#     lifetime on the server) loses no value; /metrics counts the renewals;
#  secrets (passwords, the configured key) never appear in the logs.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

MODULES=$(bash scripts/opcua-test-server.sh --install) || {
    echo "FAIL cannot install node-opcua"
    exit 1
}
PORT=$(free_port)
EP=opc.tcp://127.0.0.1:$PORT
mkdir -p "$T/trust" "$T/certs" "$T/certs2" "$T/server"
start_bg in_dir "$T/server" env PORT="$PORT" COUNTER_MS=100 TOKEN_MS=3000 PKI_DIR="$T/server" \
    TRUST_DIR="$T/trust" NODE_PATH="$MODULES" node "$PWD/tests/opcua/secure_server.js" \
    >"$T/server.log" 2>&1
wait_line "$T/server.log" READY 120 || {
    echo "FAIL server did not start"
    exit 1
}
FP=$(sed -n 's/^FINGERPRINT //p' "$T/server.log")

# queueSize 1000: under machine load the server's publish cycle can lag more
# than queueSize changes of the 100 ms counter, and it discards the oldest;
# the checks are about what tagproc receives, so the server keeps them all.
config() { # file, extra input options (YAML flow map entries)
    cat >"$1" <<EOF
input:
  opcua: {endpoint: "$EP", nodeIDs: ["ns=2;s=Counter"], subscribeEnabled: true, queueSize: 1000, $2}
output:
  stdout: {}
EOF
}
# run NAME LINES: runs $T/NAME.yaml until LINES messages (at most 90 s) or
# exit; SIGTERM; exit code in NAME.rc, messages in NAME.out, log in NAME.err.
run() {
    run_until "$T/$1.out" "$2" 90 "$BIN" -c "$T/$1.yaml" 2>"$T/$1.err"
    echo $? >"$T/$1.rc"
}
# consecutive FILE MIN: at least MIN counter values, each one more than the last
consecutive() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
vals = [json.loads(l)["payload"] for l in open(sys.argv[1]) if l.strip()]
ok = len(vals) >= int(sys.argv[2]) and all(b == a + 1 for a, b in zip(vals, vals[1:]))
print(f"{len(vals)} values {vals[:3]}..{vals[-3:]}")
sys.exit(0 if ok else 1)
EOF
}
delivered() { # NAME: exit 0 after SIGTERM and consecutive counter values
    check_sh "$2" "cat $T/$1.rc; grep -a error $T/$1.err | head -3; [ \$(cat $T/$1.rc) = 0 ] && consecutive $T/$1.out 3"
}

# ---- 1. our certificate is unknown to the server ----
config "$T/untrusted.yaml" "securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256, certificate_dir: \"$T/certs\""
run untrusted 1
check_sh "untrusted client certificate: exit 1, error says to trust it on the server" \
    "grep -a error $T/untrusted.err; [ \$(cat $T/untrusted.rc) = 1 ] && grep -q 'BadSecurityChecksFailed.*the server rejected our client certificate (SHA1 thumbprint [0-9A-F]\{40\}): trust it on the server' $T/untrusted.err"
check_sh "generated certificate: logged once as base64, kept in certificate_dir (0600)" \
    "[ \$(grep -c 'generated a client certificate (RSA 2048, urn:tagproc:client); to keep it, set clientCertificate to this base64 PEM bundle' $T/untrusted.err) = 1 ] && [ \$(stat -c %a $T/certs/tagproc-opcua-client.pem) = 600 ] && grep -q 'BEGIN CERTIFICATE' $T/certs/tagproc-opcua-client.pem"
cp "$T/certs/tagproc-opcua-client.pem" "$T/trust/client.pem"
wait_line "$T/server.log" 'TRUSTED client.pem' 60

# ---- 2. every mode and policy ----
for mode in Sign SignAndEncrypt; do
    for policy in Basic256Sha256 Aes128_Sha256_RsaOaep Aes256_Sha256_RsaPss; do
        config "$T/p.yaml" "securityMode: $mode, securityPolicy: $policy, certificate_dir: \"$T/certs\""
        run p 10
        check_sh "$mode $policy: subscription delivers every change in order" \
            "cat $T/p.rc; grep -a -e error -e warn $T/p.err | head -3; [ \$(cat $T/p.rc) = 0 ] && consecutive $T/p.out 10 && ! grep -q 'generated a client certificate' $T/p.err"
    done
done

# ---- 3. endpoint choice, server certificate ----
config "$T/auto.yaml" "certificate_dir: \"$T/certs\", serverCertificateFingerprint: \"${FP^^}\""
run auto 3
delivered auto "unset mode/policy and a matching fingerprint (upper case): connects"
check_sh "the most secure endpoint is chosen and logged" \
    "grep -q 'chose the endpoint with securityMode SignAndEncrypt, securityPolicy Aes256_Sha256_RsaPss' $T/auto.err"
check_sh "without a pin the fingerprint to pin is logged" \
    "grep -q 'fingerprint $FP (set serverCertificateFingerprint' $T/p.err"
BADFP=$(echo "$FP" | tr 0-9a-f 1-9a-f0)
config "$T/pin.yaml" "securityMode: Sign, securityPolicy: Basic256Sha256, certificate_dir: \"$T/certs\", serverCertificateFingerprint: \"$BADFP\""
run pin 1
check_sh "fingerprint mismatch: refused (exit 2), both fingerprints named" \
    "grep -a error $T/pin.err; [ \$(cat $T/pin.rc) = 2 ] && grep -q \"mismatch: serverCertificateFingerprint is $BADFP, the server presents $FP\" $T/pin.err && [ ! -s $T/pin.out ]"
config "$T/insecure.yaml" "securityMode: Sign, securityPolicy: Basic256Sha256, certificate_dir: \"$T/certs\", insecure: true"
run insecure 3
delivered insecure "insecure: connects"
check_sh "insecure: a loud warning" "grep -q 'warn  opcua: INSECURE: insecure is set, the server certificate is NOT checked' $T/insecure.err"

# ---- 4. identities ----
config "$T/user.yaml" "securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256, certificate_dir: \"$T/certs\", username: user1, password: pass1"
run user 3
delivered user "username/password (encrypted) accepted"
config "$T/baduser.yaml" "securityMode: Sign, securityPolicy: Aes256_Sha256_RsaPss, certificate_dir: \"$T/certs\", username: user1, password: s3cret-wrong"
run baduser 1
check_sh "wrong password: exit 1, login rejected" \
    "grep -a error $T/baduser.err; [ \$(cat $T/baduser.rc) = 1 ] && grep -q \"login as 'user1' rejected (BadUserAccessDenied)\" $T/baduser.err"
config "$T/noneuser.yaml" "securityMode: None, securityPolicy: None, username: user1, password: pass1"
run noneuser 3
delivered noneuser "username/password on the None endpoint (password encrypted per the token policy)"
# a second certificate (rejected as a client certificate, kept) becomes the user certificate
config "$T/gen2.yaml" "securityMode: Sign, securityPolicy: Basic256Sha256, certificate_dir: \"$T/certs2\""
run gen2 1
USER_B64=$(base64 -w0 "$T/certs2/tagproc-opcua-client.pem")
config "$T/ucert.yaml" "securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256, certificate_dir: \"$T/certs\", userCertificate: \"$USER_B64\", userPrivateKey: \"$USER_B64\""
run ucert 1
check_sh "user certificate not trusted by the server: login rejected" \
    "grep -a error $T/ucert.err; [ \$(cat $T/ucert.rc) = 1 ] && grep -q 'login with the user certificate rejected' $T/ucert.err"
cp "$T/certs2/tagproc-opcua-client.pem" "$T/trust/u.user.pem"
wait_line "$T/server.log" 'TRUSTED u.user.pem' 60
run ucert 3
delivered ucert "user certificate identity accepted once trusted"
CLIENT_B64=$(base64 -w0 "$T/certs/tagproc-opcua-client.pem")
config "$T/cfgcert.yaml" "securityMode: SignAndEncrypt, securityPolicy: Aes128_Sha256_RsaOaep, clientCertificate: \"$CLIENT_B64\""
run cfgcert 3
delivered cfgcert "clientCertificate from the config"

# ---- 5. renewals ----
HTTP=$(free_port)
config "$T/renew.yaml" "securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256, certificate_dir: \"$T/certs\""
echo "http: {address: \"127.0.0.1:$HTTP\"}" >>"$T/renew.yaml"
start_bg "$BIN" -c "$T/renew.yaml" >"$T/renew.out" 2>"$T/renew.err"
wait_until "[ \$(lines $T/renew.out) -ge 90 ] || ! kill -0 $BG_PID 2>/dev/null" 120
curl -s -m 30 "http://127.0.0.1:$HTTP/metrics" >"$T/renew.metrics"
stop_bg "$BG_PID"
echo $? >"$T/renew.rc"
check_sh "subscription across secure channel renewals (3 s tokens): no value lost" \
    "grep -a 'renewals' $T/renew.err; [ \$(cat $T/renew.rc) = 0 ] && consecutive $T/renew.out 90 && grep -q 'notifications missed, [1-9][0-9]* secure channel renewals' $T/renew.err"
check_sh "/metrics: renewals counted, no notification missed or reconnect" \
    "grep '^tagproc_opcua' $T/renew.metrics; grep -q '^tagproc_opcua_channel_renewals_total [1-9]' $T/renew.metrics && grep -q '^tagproc_opcua_notifications_missed_total 0$' $T/renew.metrics && grep -q '^tagproc_opcua_notifications_republished_total 0$' $T/renew.metrics && grep -q '^tagproc_opcua_reconnects_total 0$' $T/renew.metrics"

# (untrusted.err and gen2.err log the certificates generated there, as they must)
check_sh "secrets never logged (passwords, configured certificates and keys)" \
    "! grep -l -e pass1 -e s3cret-wrong -e '${CLIENT_B64:0:200}' -e '${USER_B64:0:200}' -e 'PRIVATE KEY' $T/{user,baduser,noneuser,ucert,cfgcert,renew,auto,p}.err"

finish
