// OPC UA test server with security for tagproc's security tests (node-opcua):
// endpoints None, Sign and SignAndEncrypt with Basic256Sha256,
// Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss; PKI in PKI_DIR; unknown
// client certificates are rejected (kept in PKI_DIR/pki/rejected) until a
// DER/PEM file dropped into TRUST_DIR is trusted ("*.user.*": as a user
// certificate). Users user1/pass1 (password encrypted by the client) and
// certificates. ns=2;s=Counter counts up every COUNTER_MS; the channel token
// lifetime is TOKEN_MS (short, to test renewals). Prints "READY <port>".
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const opcua = require("node-opcua");
const { DataType, Variant, MessageSecurityMode, SecurityPolicy, OPCUACertificateManager } = opcua;

const port = Number(process.env.PORT || 4840);
const counterMs = Number(process.env.COUNTER_MS || 100);
const tokenMs = Number(process.env.TOKEN_MS || 600000);
const pkiDir = process.env.PKI_DIR || path.join(process.cwd(), "opcua-pki");
const trustDir = process.env.TRUST_DIR || "";

async function main() {
    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pkiDir, "pki"), automaticallyAcceptUnknownCertificate: false });
    const userCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pkiDir, "user_pki"), automaticallyAcceptUnknownCertificate: false });
    await serverCertificateManager.initialize();
    await userCertificateManager.initialize();
    const server = new opcua.OPCUAServer({
        port,
        hostname: "127.0.0.1",
        serverCertificateManager,
        userCertificateManager,
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign,
            MessageSecurityMode.SignAndEncrypt],
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256,
            SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss],
        allowAnonymous: true,
        disableDiscovery: true,
        defaultSecureTokenLifetime: tokenMs,
        maxConnectionsPerEndpoint: 20,
        serverCapabilities: { maxSessions: 20, operationLimits: {} },
        userManager: { isValidUser: (u, p) => u === "user1" && p === "pass1" },
    });
    await server.initialize();
    const ns = server.engine.addressSpace.registerNamespace("urn:tagproc:test"); // index 2
    const objects = server.engine.addressSpace.rootFolder.objects;
    const counter = ns.addVariable({ organizedBy: objects, nodeId: "s=Counter", browseName: "Counter",
        dataType: "Int32", value: new Variant({ dataType: DataType.Int32, value: 0 }) });
    let n = 0;
    setInterval(() => counter.setValueFromSource(new Variant({ dataType: DataType.Int32, value: ++n })),
        counterMs);

    if (trustDir) { // trust what the test drops here
        const seen = new Set();
        setInterval(async () => {
            for (const f of fs.readdirSync(trustDir)) {
                if (seen.has(f))
                    continue;
                seen.add(f);
                let buf = fs.readFileSync(path.join(trustDir, f));
                if (buf.toString("latin1").includes("-----BEGIN CERTIFICATE-----"))
                    buf = new crypto.X509Certificate(buf).raw; // the first certificate, as DER
                const cm = f.includes(".user.") ? userCertificateManager : serverCertificateManager;
                await cm.trustCertificate(buf);
                console.log(`TRUSTED ${f}`);
            }
        }, 200);
    }
    await server.start();
    const fp = crypto.createHash("sha3-512").update(server.getCertificate()).digest("hex");
    console.log(`FINGERPRINT ${fp}`);
    console.log(`READY ${port}`);
    const stop = async () => { await server.shutdown(0); process.exit(0); };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}
main().catch((e) => { console.error(e); process.exit(1); });
