// OPC UA test server for tagproc (node-opcua, security mode None only) with
// a generated address space: the benthos-umh docs' FolderNode/SubFolder
// example, one scalar and one 1-D array variable per data type benthos-umh
// lists as verified, a property and a null-DataType variable (both must be
// skipped), a bad-status variable, ns=2;s=Counter counting up every
// COUNTER_MS (ns=2;s=PollCounter: once read since its last step), and optionally N_VARS generated variables (Scale folder).
// Users: user1/pass1 (plain password on the None endpoint). Prints
// "READY <port>" once listening on 127.0.0.1.
"use strict";
const opcua = require("node-opcua");
const { DataType, Variant, VariantArrayType, StatusCodes, NodeId, UserTokenType,
    UserTokenPolicy, MessageSecurityMode, SecurityPolicy, LocalizedText, QualifiedName,
    coerceNodeId } = opcua;

const port = Number(process.env.PORT || 4840);
const counterMs = Number(process.env.COUNTER_MS || 100);
const nVars = Number(process.env.N_VARS || 0);
const scaleMs = Number(process.env.SCALE_MS || 0);

async function main() {
    const server = new opcua.OPCUAServer({
        port,
        hostname: "127.0.0.1",
        securityModes: [MessageSecurityMode.None],
        securityPolicies: [SecurityPolicy.None],
        allowAnonymous: true,
        disableDiscovery: true,
        maxConnectionsPerEndpoint: 20,
        serverCapabilities: { maxSessions: 20, operationLimits: {} },
        userManager: { isValidUser: (u, p) => u === "user1" && p === "pass1" },
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.registerNamespace("urn:tagproc:test"); // index 2
    const objects = addressSpace.rootFolder.objects;

    const folder = (parent, name) =>
        ns.addFolder(parent, { nodeId: `s=${name}`, browseName: name });
    const variable = (parent, name, dataType, value, arrayType) =>
        ns.addVariable({
            componentOf: parent, nodeId: `s=${name}`, browseName: name, dataType,
            description: `test variable ${name}`,
            value: new Variant({ dataType, value, arrayType: arrayType || VariantArrayType.Scalar }),
        });

    // benthos-umh docs example
    const fn = folder(objects, "FolderNode");
    ns.addVariable({ organizedBy: fn, nodeId: "s=Tag1", browseName: "Tag1", dataType: "Double",
        value: new Variant({ dataType: DataType.Double, value: 1.5 }) });
    ns.addVariable({ organizedBy: fn, nodeId: "s=Tag2", browseName: "Tag2", dataType: "Int32",
        value: new Variant({ dataType: DataType.Int32, value: 2 }) });
    const sub = folder(fn, "SubFolder");
    ns.addVariable({ organizedBy: sub, nodeId: "s=Tag3", browseName: "Tag3", dataType: "String",
        value: new Variant({ dataType: DataType.String, value: "three" }) });
    ns.addVariable({ organizedBy: sub, nodeId: "s=Tag4", browseName: "Tag4", dataType: "Boolean",
        value: new Variant({ dataType: DataType.Boolean, value: true }) });

    // data types: scalar and array of each
    const types = folder(objects, "DataTypes");
    const guid = "72962B91-FA75-4AE6-8D28-B404DC7DAF63";
    const samples = [
        ["Boolean", DataType.Boolean, true, [true, false]],
        ["Byte", DataType.Byte, 200, [1, 2, 255]],
        ["SByte", DataType.SByte, -100, [-1, 0, 1]],
        ["Int16", DataType.Int16, -30000, [-1, 2]],
        ["UInt16", DataType.UInt16, 60000, [1, 65535]],
        ["Int32", DataType.Int32, -2000000000, [-5, 5]],
        ["UInt32", DataType.UInt32, 4000000000, [0, 4294967295]],
        ["Int64", DataType.Int64, [0xffffffff, 0xfffffffe], [[0, 1], [0, 2]]],
        ["UInt64", DataType.UInt64, [0, 123456789], [[0, 1], [1, 0]]],
        ["Float", DataType.Float, 1.5, [0.25, -2.5]],
        ["Double", DataType.Double, 3.141592653589793, [1e-7, 2.5e10]],
        ["String", DataType.String, "he said \"hi\"", ["a", "b"]],
        ["DateTime", DataType.DateTime, new Date(Date.UTC(2024, 2, 12, 10, 0, 0, 123)),
            [new Date(Date.UTC(2020, 0, 1)), new Date(Date.UTC(2021, 0, 1))]],
        ["Guid", DataType.Guid, guid, [guid]],
        ["ByteString", DataType.ByteString, Buffer.from("hello"), [Buffer.from([1, 2, 3])]],
        ["XmlElement", DataType.XmlElement, "<a>1</a>", ["<b/>"]],
        ["NodeId", DataType.NodeId, coerceNodeId("ns=2;s=Tag1"), [coerceNodeId("i=85")]],
        ["ExpandedNodeId", DataType.ExpandedNodeId, coerceNodeId("ns=2;i=7"), [coerceNodeId("i=84")]],
        ["StatusCode", DataType.StatusCode, StatusCodes.BadSensorFailure, [StatusCodes.Good]],
        ["QualifiedName", DataType.QualifiedName, new QualifiedName({ namespaceIndex: 2, name: "qn" }),
            [new QualifiedName({ name: "a" })]],
        ["LocalizedText", DataType.LocalizedText, new LocalizedText({ locale: "en", text: "hello" }),
            [new LocalizedText({ text: "x" })]],
    ];
    for (const [name, dt, scalar, array] of samples) {
        variable(types, `Scalar_${name}`, name, scalar);
        variable(types, `Array_${name}`, name, array, VariantArrayType.Array);
    }
    // abstract / derived data types carrying a concrete value
    const derived = [
        ["Enumeration", "Enumeration", DataType.Int32, 2],
        ["Number", "Number", DataType.Double, 4.5],
        ["Integer", "Integer", DataType.Int64, [0, 42]],
        ["UInteger", "UInteger", DataType.UInt32, 7],
        ["Duration", "Duration", DataType.Double, 250.5],
        ["UtcTime", "UtcTime", DataType.DateTime, new Date(Date.UTC(2024, 0, 2, 3, 4, 5))],
        ["LocaleId", "LocaleId", DataType.String, "de-DE"],
        ["Variant", "BaseDataType", DataType.Double, 8.25],
        ["ByteArray", "Byte", DataType.Byte, [10, 20], VariantArrayType.Array],
    ];
    for (const [name, typeName, dt, value, arrayType] of derived)
        ns.addVariable({ componentOf: types, nodeId: `s=Scalar_${name}`, browseName: `Scalar_${name}`,
            dataType: typeName, valueRank: arrayType ? 1 : -1,
            value: new Variant({ dataType: dt, value, arrayType: arrayType || VariantArrayType.Scalar }) });

    // skipped: a property and a variable without a DataType; a 2-D array (unsupported)
    const special = folder(objects, "Special");
    const withProp = ns.addVariable({ organizedBy: special, nodeId: "s=WithProperty",
        browseName: "WithProperty", dataType: "Double",
        value: new Variant({ dataType: DataType.Double, value: 1 }) });
    ns.addVariable({ propertyOf: withProp, nodeId: "s=EURange", browseName: "EURange",
        dataType: "Double", value: new Variant({ dataType: DataType.Double, value: 100 }) });
    const nullType = ns.addVariable({ organizedBy: special, nodeId: "s=NullType",
        browseName: "NullType", dataType: "Double" });
    nullType.dataType = new NodeId(); // null DataType
    const bad = ns.addVariable({ organizedBy: special, nodeId: "s=BadSensor", browseName: "BadSensor",
        dataType: "Double" });
    bad.setValueFromSource(new Variant({ dataType: DataType.Double, value: 0 }),
        StatusCodes.BadSensorFailure);
    ns.addVariable({ organizedBy: special, nodeId: "s=Matrix", browseName: "Matrix",
        dataType: "Double", valueRank: 2, arrayDimensions: [2, 2],
        value: new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Matrix,
            dimensions: [2, 2], value: [1, 2, 3, 4] }) });
    ns.addVariable({ organizedBy: special, nodeId: "s=Odd Name/with.dots", browseName: "Odd Name/with.dots",
        dataType: "Int32", value: new Variant({ dataType: DataType.Int32, value: 9 }) });

    // a value changing at a known rate
    const counter = ns.addVariable({ organizedBy: objects, nodeId: "s=Counter", browseName: "Counter",
        dataType: "Int32", value: new Variant({ dataType: DataType.Int32, value: 0 }) });
    let n = 0;
    setInterval(() => counter.setValueFromSource(new Variant({ dataType: DataType.Int32, value: ++n })),
        counterMs);
    // the same, but a value changes only once a client has read it: polling
    // sees every value however late a poll comes on a loaded machine, so a
    // value missing from what tagproc delivers is tagproc's, not the timing's
    let polled = 0, pollRead = false;
    ns.addVariable({ organizedBy: objects, nodeId: "s=PollCounter", browseName: "PollCounter",
        dataType: "Int32", minimumSamplingInterval: 0,
        value: { get: () => { pollRead = true; return new Variant({ dataType: DataType.Int32, value: polled }); } } });
    setInterval(() => { if (pollRead) { polled++; pollRead = false; } }, counterMs);

    // scale test: N_VARS doubles in folders of 100, changing every SCALE_MS (0: never)
    if (nVars > 0) {
        const scale = folder(objects, "Scale");
        const vars = [];
        for (let f = 0; f * 100 < nVars; f++) {
            const fo = ns.addFolder(scale, { nodeId: `s=Scale.F${f}`, browseName: `F${f}` });
            for (let i = f * 100; i < Math.min(nVars, (f + 1) * 100); i++)
                vars.push(ns.addVariable({ organizedBy: fo, nodeId: `s=Scale.V${i}`, browseName: `V${i}`,
                    dataType: "Double", value: new Variant({ dataType: DataType.Double, value: i }) }));
        }
        if (scaleMs > 0) {
            let t = 0;
            setInterval(() => {
                t++;
                for (const v of vars)
                    v.setValueFromSource(new Variant({ dataType: DataType.Double, value: t }));
            }, scaleMs);
        }
    }

    // plain-text username/password on the None endpoint (node-opcua 2.140 does
    // not pass allowUnsecurePassword through its server options)
    for (const ep of server.endpoints)
        for (const d of ep.endpointDescriptions())
            if (d.securityMode === MessageSecurityMode.None)
                d.userIdentityTokens.push(new UserTokenPolicy({ policyId: "username_unsecure",
                    tokenType: UserTokenType.UserName }));
    await server.start();
    console.log(`READY ${port}`);
    const stop = async () => { await server.shutdown(0); process.exit(0); };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}
main().catch((e) => { console.error(e); process.exit(1); });
