import Foundation
import Testing
import WharfTestSupport

/// `wharf partner issue NAME --csr FILE`: Wharf signs a key it never sees, on its own
/// terms, and refuses a request it cannot trust without writing anything.
@Suite(.serialized) struct CertificateRequestTests {
    let fixture: WharfHomeFixture

    init() throws {
        fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        try fixture.succeed("partner", "add", "acme", "--display-name", "Acme Corp")
    }

    /// A key and a request made with openssl, as a partner would; returns their paths.
    func request(_ name: String, newKey: [String], extra: [String] = []) throws -> (key: String, csr: String) {
        let key = fixture.directory.file("\(name).key")
        let csr = fixture.directory.file("\(name).csr")
        let made = try Command.run(
            "openssl", ["req", "-new", "-nodes"] + newKey + ["-keyout", key, "-subj", "/CN=evilcorp/O=Someone Else", "-out", csr] + extra
        )
        try #require(made.succeeded, "\(made.stderr)")
        return (key, csr)
    }

    func openssl(_ arguments: String...) throws -> CommandResult {
        try Command.run("openssl", arguments)
    }

    @Test func aSignedRequestGetsACertificateOnWharfsTermsAndTheKeyUploads() async throws {
        let own = try request(
            "acme", newKey: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            extra: ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "extendedKeyUsage=serverAuth,clientAuth",
                    "-addext", "subjectAltName=DNS:evil.example"]
        )
        let issued = try await fixture.succeed("partner", "issue", "acme", "--csr", own.csr).stdout
        #expect(issued.contains("for the partner's P-256 request"), "\(issued)")
        #expect(issued.contains("the request asked for"), "\(issued)")
        #expect(issued.contains("--key YOUR_KEY"), "\(issued)")

        let bundle = "\(fixture.home)/partners/acme"
        let files = try FileManager.default.contentsOfDirectory(atPath: bundle).sorted()
        #expect(files == ["README.md", "acme.crt", "acme.p12.password", "ca.crt", "truststore.p12"], "\(files)")
        let certificate = "\(bundle)/acme.crt"
        let subject = try openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", certificate).stdout
        #expect(subject.contains("CN=acme,O=Acme Corp"), "\(subject)")
        let text = try openssl("x509", "-noout", "-text", "-in", certificate).stdout
        #expect(text.contains("CA:FALSE") && text.contains("TLS Web Client Authentication"), "\(text)")
        #expect(!text.contains("TLS Web Server Authentication") && !text.contains("evil.example"), "\(text)")
        #expect(try openssl("verify", "-CAfile", "\(fixture.home)/pki/ca.crt", "-purpose", "sslclient", certificate).succeeded)
        let certificateKey = try openssl("x509", "-noout", "-pubkey", "-in", certificate).stdout
        #expect(certificateKey == (try openssl("pkey", "-pubout", "-in", own.key).stdout))
        let readme = try String(contentsOfFile: "\(bundle)/README.md", encoding: .utf8)
        #expect(readme.contains("openssl pkcs12 -export -in acme.crt -inkey acme.key"), "\(readme)")

        let gateway = try await TestGateway.start(fixture: fixture)
        let file = try gateway.randomFile("order.xml", size: 1_000)
        let upload = try await Command.runAsync("curl", [
            "-sS", "-w", "\n%{http_code}", "--cert", certificate, "--key", own.key, "--cacert", "\(bundle)/ca.crt",
            "--upload-file", file.path, gateway.url("/inbox/order.xml"),
        ])
        #expect(HTTPResult(upload).status == 201, "\(upload.stdout)\(upload.stderr)")
        try await gateway.stop()
    }

    @Test func anRSA3072RequestIsSignedToo() throws {
        let own = try request("rsa", newKey: ["-newkey", "rsa:3072"])
        let issued = try fixture.succeed("partner", "issue", "acme", "--csr", own.csr).stdout
        #expect(issued.contains("RSA-3072 request"), "\(issued)")
        let text = try openssl("x509", "-noout", "-text", "-in", "\(fixture.home)/partners/acme/acme.crt").stdout
        #expect(text.contains("Public-Key: (3072 bit)") && text.contains("Key Encipherment"), "\(text)")
    }

    struct Refusal: CustomTestStringConvertible, Sendable {
        let label: String
        /// Writes the file to give to --csr and returns its path.
        let make: @Sendable (CertificateRequestTests) throws -> String
        let says: String
        var testDescription: String { label }
    }

    static let refusals: [Refusal] = [
        Refusal(label: "a request whose content was changed after signing", make: { test in
            let csr = try test.request("forged", newKey: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]).csr
            let pem = try String(contentsOfFile: csr, encoding: .utf8)
            let base64 = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            var der = try #require(Data(base64Encoded: base64))
            let original = Data("evilcorp".utf8)
            let range = try #require(der.range(of: original))
            der.replaceSubrange(range, with: Data("evilcorq".utf8))
            let forged = "-----BEGIN CERTIFICATE REQUEST-----\n\(der.base64EncodedString(options: .lineLength64Characters))\n-----END CERTIFICATE REQUEST-----\n"
            return try test.fixture.directory.write("forged-changed.csr", forged)
        }, says: "signature of the request"),
        Refusal(label: "an RSA-1024 request", make: { test in
            try test.request("rsa1024", newKey: ["-newkey", "rsa:1024"]).csr
        }, says: "P-256, P-384 or RSA of 2048 bits or more"),
        Refusal(label: "a P-521 request", make: { test in
            try test.request("p521", newKey: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp521r1"]).csr
        }, says: "P-256, P-384 or RSA of 2048 bits or more"),
        Refusal(label: "an Ed25519 request", make: { test in
            try test.request("ed25519", newKey: ["-newkey", "ed25519"]).csr
        }, says: "P-256, P-384 or RSA"),
        Refusal(label: "a certificate instead of a request", make: { test in
            "\(test.fixture.home)/pki/ca.crt"
        }, says: "not a certificate request"),
        Refusal(label: "a file of garbage", make: { test in
            try test.fixture.directory.write("garbage.csr", "hello\u{1b}[31m\n")
        }, says: "is not a certificate request Wharf can read"),
    ]

    @Test(arguments: refusals)
    func aRequestWharfCannotTrustIsRefusedAndNothingIsWritten(_ refusal: Refusal) throws {
        let csr = try refusal.make(self)
        let before = try fixture.snapshot(excludingTables: [])
        let result = try fixture.wharf("partner", "issue", "acme", "--csr", csr)
        #expect(result.status != 0)
        #expect(result.stderr.contains(refusal.says), "\(result.stderr)")
        #expect(!result.stderr.contains("\u{1b}"), "raw escape in the message")
        #expect(try fixture.snapshot(excludingTables: []) == before)
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.home)/partners/acme"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/partners").isEmpty)
    }
}
