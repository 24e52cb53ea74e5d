import Foundation
import Testing
import WharfPKI
import WharfTestSupport

/// A partner whose client certificate no CA issued (self-signed, as OpenAS2 partners use):
/// registered by its file or its fingerprint, that exact certificate is accepted, for that
/// partner only, and no other certificate with its name.
@Suite(.serialized) struct SelfSignedPartnerTests {
    /// A self-signed P-256 certificate and key made by openssl, as a partner would.
    /// `extensions` as `-addext` takes them; without, openssl's defaults (a CA certificate).
    func selfSigned(_ name: String, subject: String, in directory: TemporaryDirectory, extensions: [String] = []) throws -> [String] {
        let (certificate, key) = (directory.file("\(name).crt"), directory.file("\(name).key"))
        let made = try Command.run("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-subj", subject, "-days", "30",
        ] + extensions.flatMap { ["-addext", $0] })
        try #require(made.succeeded, "\(made.stderr)")
        return ["--cert", certificate, "--key", key]
    }

    func fingerprint(_ certificate: String) throws -> String {
        let printed = try Command.run("openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-in", certificate]).stdout
        return try #require(printed.split(separator: "=").last).replacingOccurrences(of: ":", with: "").lowercased()
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func theRegisteredCertificateIsAcceptedExactlyAndRemovingItRefusesItWithoutARestart() async throws {
        let gateway = try await TestGateway.start()
        let directory = gateway.fixture.directory
        let own = try selfSigned(
            "selfie", subject: "/CN=as2.selfie.example/O=Selfie", in: directory,
            extensions: ["basicConstraints=critical,CA:FALSE", "extendedKeyUsage=clientAuth"]
        )
        let twin = try selfSigned("twin", subject: "/CN=as2.selfie.example/O=Selfie", in: directory)
        let file = try gateway.randomFile("order.edi", size: 500)
        func upload(_ credentials: [String], as name: String) async throws -> HTTPResult {
            try await gateway.curl(credentials + ["--upload-file", file.path, gateway.url("/inbox/\(name)")], as: nil)
        }

        let unknown = try await upload(own, as: "before.edi")
        #expect(unknown.status == 0 && unknown.curlStatus != 0, "an unregistered self-signed certificate was accepted: \(unknown.body)")

        try await gateway.fixture.succeed("partner", "add", "selfie", "--certificate", own[1])
        let accepted = try await upload(own, as: "accepted.edi")
        #expect(accepted.status == 201, "\(accepted.body)\(accepted.stderr)")
        #expect(try gateway.registry.auditEvents(limit: 1).first?.partner == "selfie")

        // Same subject, another key: no CA vouches for it and its fingerprint is not known.
        let impostor = try await upload(twin, as: "impostor.edi")
        #expect(impostor.status == 0 && impostor.curlStatus != 0, "a look-alike was accepted: \(impostor.body)")
        // Acme's certificate still maps to acme only.
        #expect(try await gateway.put(file.path, as: "acme.edi").status == 201)
        // openssl's default self-signed certificate (a CA one) works the same way.
        let plain = try selfSigned("plain", subject: "/CN=plain.example", in: directory)
        try await gateway.fixture.succeed("partner", "add", "plain", "--certificate", plain[1])
        #expect(try await upload(plain, as: "plain.edi").status == 201)
        #expect(try gateway.registry.auditEvents(limit: 1).first?.partner == "plain")

        let hex = try fingerprint(own[1])
        let shown = try await gateway.fixture.succeed("partner", "show", "selfie").stdout
        #expect(shown.contains("self-signed") && shown.contains(hex), "\(shown)")
        let identities = try #require(try gateway.fixture.partnerJSON("selfie")["identities"] as? [[String: Any]])
        #expect(identities.count == 1 && identities.first?["value"] as? String == hex && identities.first?["not_after"] is String)

        try await gateway.fixture.succeed("partner", "update", "selfie", "--remove-fingerprint", hex)
        let removed = try await upload(own, as: "after.edi")
        #expect(removed.status == 0 && removed.curlStatus != 0, "a removed certificate was accepted: \(removed.body)")
        #expect(try gateway.fixture.partnerJSON("selfie")["pinned_certificates"] is NSNull)
        try await gateway.stop()
    }

    @Test func aJavaPartnersKeytoolCertificateIsAccepted() async throws {
        guard Command.exists("keytool") else { return }
        let gateway = try await TestGateway.start()
        let directory = gateway.fixture.directory
        let (store, certificate, key) = (directory.file("java.p12"), directory.file("java.crt"), directory.file("java.key"))
        for arguments in [
            ["-genkeypair", "-alias", "java", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=java.example,O=Java",
             "-validity", "30", "-storetype", "PKCS12", "-keystore", store, "-storepass", "changeit"],
            ["-exportcert", "-rfc", "-alias", "java", "-keystore", store, "-storepass", "changeit", "-file", certificate],
        ] {
            let run = try await Command.runAsync("keytool", arguments)
            try #require(run.succeeded, "\(run.stdout)\(run.stderr)")
        }
        let exported = try await Command.runAsync("openssl", ["pkcs12", "-in", store, "-passin", "pass:changeit", "-nocerts", "-nodes", "-out", key])
        try #require(exported.succeeded, "\(exported.stderr)")
        try await gateway.fixture.succeed("partner", "add", "java", "--certificate", certificate)
        let file = try gateway.randomFile("a.xml", size: 10)
        let upload = try await gateway.curl(["--cert", certificate, "--key", key, "--upload-file", file.path, gateway.url("/inbox/a.xml")], as: nil)
        #expect(upload.status == 201, "\(upload.body)\(upload.stderr)")
        try await gateway.stop()
    }

    /// A partner that sends only its fingerprint (over the phone, in an e-mail): its
    /// self-signed certificate is accepted exactly, also with a key usage no TLS library
    /// would take as its own issuer's, and refused again once removed, revoked or expired.
    @Test func aSelfSignedCertificateKnownByItsFingerprintAloneIsAcceptedExactly() async throws {
        let gateway = try await TestGateway.start()
        let directory = gateway.fixture.directory
        let strict = try selfSigned(
            "strict", subject: "/CN=strict.example", in: directory,
            extensions: ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth"]
        )
        let hex = try fingerprint(strict[1])
        let file = try gateway.randomFile("order.edi", size: 300)
        func upload(_ credentials: [String], as name: String) async throws -> HTTPResult {
            try await gateway.curl(credentials + ["--upload-file", file.path, gateway.url("/inbox/\(name)")], as: nil)
        }
        let unknown = try await upload(strict, as: "before.edi")
        #expect(unknown.status == 0 && unknown.curlStatus != 0, "an unregistered self-signed certificate was accepted: \(unknown.body)")

        try await gateway.fixture.succeed("partner", "add", "strict", "--fingerprint", hex)
        let accepted = try await upload(strict, as: "accepted.edi")
        #expect(accepted.status == 201, "\(accepted.body)\(accepted.stderr)")
        #expect(try gateway.registry.auditEvents(limit: 1).first?.partner == "strict")

        // The same subject with another key is not that certificate.
        let twin = try selfSigned("twin", subject: "/CN=strict.example", in: directory)
        let impostor = try await upload(twin, as: "impostor.edi")
        #expect(impostor.status == 0 && impostor.curlStatus != 0, "a look-alike was accepted: \(impostor.body)")

        // Revoked: refused at the handshake (no HTTP answer), without a restart.
        try await gateway.fixture.succeed("partner", "revoke", "strict", "--fingerprint", hex, "--reason", "key leaked")
        let revoked = try await upload(strict, as: "revoked.edi")
        #expect(revoked.status == 0 && revoked.curlStatus != 0, "a revoked certificate was answered: \(revoked.status) \(revoked.body)")

        // Expired: refused at the handshake although its fingerprint is registered.
        let old = try CertificateAuthority.create(commonName: "old.example", keyType: .p256, days: 2, now: Date().addingTimeInterval(-10 * 86_400))
        let oldCredentials = [
            "--cert", try directory.write("old.crt", old.certificate.pemText), "--key", try directory.write("old.key", old.keyed.privateKeyPEM),
        ]
        try await gateway.fixture.succeed("partner", "add", "old", "--fingerprint", old.certificate.fingerprint.hex)
        let expired = try await upload(oldCredentials, as: "expired.edi")
        #expect(expired.status == 0 && expired.curlStatus != 0, "an expired certificate was answered: \(expired.status) \(expired.body)")

        // A fingerprint removed: its certificate is refused again.
        let another = try selfSigned("another", subject: "/CN=another.example", in: directory)
        let anotherHex = try fingerprint(another[1])
        try await gateway.fixture.succeed("partner", "add", "another", "--fingerprint", anotherHex)
        #expect(try await upload(another, as: "another.edi").status == 201)
        try await gateway.fixture.succeed("partner", "update", "another", "--remove-fingerprint", anotherHex)
        let removed = try await upload(another, as: "removed.edi")
        #expect(removed.status == 0 && removed.curlStatus != 0, "a removed certificate was accepted: \(removed.body)")
        // Acme's CA-issued certificate is unaffected.
        #expect(try await gateway.put(file.path, as: "acme.edi").status == 201)
        try await gateway.stop()
    }

    @Test func anExpiredCertificateIsRefusedAtAddAndNothingIsWritten() async throws {
        let fixture = try WharfHomeFixture()
        try await fixture.succeed("init")
        let old = try CertificateAuthority.create(commonName: "old.example", keyType: .p256, days: 2, now: Date().addingTimeInterval(-10 * 86_400))
        let path = try fixture.directory.write("old.crt", old.certificate.pemText)
        let before = try fixture.snapshot()
        let result = try await fixture.wharf("partner", "add", "old", "--certificate", path)
        #expect(result.status != 0 && result.stderr.contains("expired on"), "\(result.stderr)")
        #expect(try fixture.snapshot() == before)
    }
}
