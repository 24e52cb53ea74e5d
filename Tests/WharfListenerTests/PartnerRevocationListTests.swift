import Foundation
import Testing
import WharfCore
import WharfPKI
import WharfStore
import WharfTestSupport

/// A partner's own CA with its own CRL (`partner update NAME --crl FILE`): certificates the
/// list names are refused at the handshake, the file is read again when it changes, and a
/// list past its next update refuses that partner's certificates only, with the reason in
/// the audit trail.
@Suite(.serialized) struct PartnerRevocationListTests {
    /// A running gateway with acme, and partner gamma whose CA (made here, its files
    /// beside the home for `openssl ca`) issued two certificates of one subject.
    struct Setup {
        let gateway: TestGateway
        let authority: CertificateAuthority
        let directory: TemporaryDirectory
        var caFile: String { directory.file("gamma-ca.pem") }

        func credentials(_ name: String) -> [String] {
            ["--cert", directory.file("\(name).crt"), "--key", directory.file("\(name).key"),
             "--cacert", "\(gateway.home)/pki/identity-ca.crt"]
        }

        func upload(_ name: String) async throws -> HTTPResult {
            let file = try gateway.randomFile("\(name).txt", size: 10)
            return try await gateway.curl(credentials(name) + ["--upload-file", file.path, gateway.url("/inbox/\(name).txt")], as: nil)
        }

        /// `openssl ca -revoke` then `-gencrl`, as a partner's CA run with OpenSSL does it.
        func opensslRevoking(_ name: String, into list: String) async throws {
            let config = directory.file("ca.cnf")
            let base = ["-config", config, "-keyfile", directory.file("gamma-ca.key"), "-cert", caFile]
            let revoked = try await Command.runAsync("openssl", ["ca"] + base + ["-revoke", directory.file("\(name).crt")])
            #expect(revoked.succeeded, "\(revoked.stderr)")
            let made = try await Command.runAsync("openssl", ["ca"] + base + ["-gencrl", "-out", list])
            #expect(made.succeeded, "\(made.stderr)")
        }

        /// A list written with Wharf's own CRL writer, for times `openssl ca` will not make.
        func write(_ entries: [RevocationList.Entry], now: Date, validity: TimeInterval, to path: String) throws {
            let list = try RevocationList(entries: entries, authority: authority, now: now, validity: validity)
            try AtomicFile.write(list.pemText, to: path, mode: 0o644)
        }
    }

    static func setUp() async throws -> Setup {
        let gateway = try await TestGateway.start()
        let directory = gateway.fixture.directory
        let authority = try CertificateAuthority.create(commonName: "Gamma Root", organization: "Gamma", keyType: .p256)
        try directory.write("gamma-ca.pem", authority.certificate.pemText)
        try directory.write("gamma-ca.key", authority.keyed.privateKeyPEM)
        for name in ["g1", "g2"] {
            let client = try authority.issueClientCertificate(commonName: "gamma-gw", organization: "Gamma", keyType: .p256, days: 30)
            try directory.write("\(name).crt", client.certificate.pemText)
            try directory.write("\(name).key", client.privateKeyPEM)
        }
        try directory.write("index.txt", "")
        try directory.write("crlnumber", "01\n")
        try directory.write("ca.cnf", """
            [ ca ]
            default_ca = gamma
            [ gamma ]
            database = \(directory.file("index.txt"))
            crlnumber = \(directory.file("crlnumber"))
            default_md = sha256
            default_crl_days = 7

            """)
        try await gateway.fixture.succeed(
            "partner", "add", "gamma", "--trust-ca", directory.file("gamma-ca.pem"), "--subject", "CN=gamma-gw,O=Gamma"
        )
        return Setup(gateway: gateway, authority: authority, directory: directory)
    }

    @Test func listedCertificatesAreRefusedAndAChangedFileIsReadAgain() async throws {
        let setup = try await Self.setUp()
        let gateway = setup.gateway
        #expect(try await setup.upload("g1").status == 201)

        let list = setup.directory.file("gamma.crl")
        try await setup.opensslRevoking("g1", into: list)
        let said = try await gateway.fixture.succeed("partner", "update", "gamma", "--crl", list)
        #expect(!said.stderr.contains("warning"), "\(said.stderr)")
        let shown = try await gateway.fixture.succeed("partner", "show", "gamma").stdout
        #expect(shown.contains("CRL           \(list)  1 revoked, next update"), "\(shown)")

        // Without a restart: g1 is refused at the handshake, g2 (same subject) and acme are not.
        let refused = try await setup.upload("g1")
        #expect(refused.status == 0 && refused.curlStatus != 0, "\(refused.body)")
        #expect(try await setup.upload("g2").status == 201)
        let file = try gateway.randomFile("a.txt", size: 10)
        #expect(try await gateway.put(file.path, as: "acme.txt").status == 201)

        // The file is replaced with a list that names nobody: read again, g1 is back.
        try setup.write([], now: Date(), validity: 86_400, to: list)
        #expect(try await setup.upload("g1").status == 201)
        try await gateway.stop()

        let events = try gateway.registry.auditEvents(AuditFilter(kind: .refusal), limit: 50).compactMap(\.detail)
        #expect(events.contains { $0.contains("listed as revoked in the CRL of partner 'gamma''s CA") }, "\(events)")
    }

    @Test func aListPastItsNextUpdateRefusesThatPartnerOnlyAndSaysWhy() async throws {
        let setup = try await Self.setUp()
        let gateway = setup.gateway
        let list = setup.directory.file("gamma.crl")
        try setup.write([], now: Date(), validity: 86_400, to: list)
        try await gateway.fixture.succeed("partner", "update", "gamma", "--crl", list)
        #expect(try await setup.upload("g2").status == 201)

        // The partner's CA stops publishing: the list on disk goes stale.
        try setup.write([], now: Date().addingTimeInterval(-3 * 86_400), validity: 86_400, to: list)
        let stale = try await setup.upload("g2")
        #expect(stale.status == 0 && stale.curlStatus != 0, "\(stale.body)")
        let file = try gateway.randomFile("a.txt", size: 10)
        #expect(try await gateway.put(file.path, as: "acme.txt").status == 201)
        let shown = try await gateway.fixture.succeed("partner", "show", "gamma").stdout
        #expect(shown.contains("(past: the partner's certificates are refused)"), "\(shown)")
        // Setting a stale list warns the operator.
        let again = try await gateway.fixture.succeed("partner", "update", "gamma", "--crl", list)
        #expect(again.stderr.contains("warning: the CRL \(list) is past its next update"), "\(again.stderr)")
        try await gateway.stop()

        let events = try gateway.registry.auditEvents(AuditFilter(kind: .refusal), limit: 50).compactMap(\.detail)
        #expect(events.contains { $0.contains("is past its next update") && $0.contains("partner 'gamma'") }, "\(events)")
    }

    @Test func aCRLWharfCannotUseIsRefusedAndNothingIsWritten() throws {
        let fixture = try TestGateway.homeWithAcme()
        let directory = fixture.directory
        let gamma = try CertificateAuthority.create(commonName: "Gamma Root", keyType: .p256)
        let other = try CertificateAuthority.create(commonName: "Gamma Root", keyType: .p256)
        try directory.write("gamma-ca.pem", gamma.certificate.pemText)
        try fixture.succeed("partner", "add", "gamma", "--trust-ca", directory.file("gamma-ca.pem"))
        let forged = try RevocationList(entries: [], authority: other)
        try directory.write("forged.crl", forged.pemText)
        try directory.write("garbage.crl", "-----BEGIN X509 CRL-----\nnot base64\u{1b}[31m\n-----END X509 CRL-----\n")
        let current = try RevocationList(entries: [], authority: gamma)
        try directory.write("gamma.crl", current.pemText)
        let before = try fixture.snapshot()
        let cases: [(arguments: [String], says: String)] = [
            (["partner", "update", "gamma", "--crl", directory.file("forged.crl")], "is not signed by gamma's --trust-ca"),
            (["partner", "update", "gamma", "--crl", directory.file("garbage.crl")], "is not a CRL Wharf can read"),
            (["partner", "update", "gamma", "--crl", directory.file("missing.crl")], "cannot read the CRL"),
            (["partner", "update", "acme", "--crl", directory.file("gamma.crl")], "acme has no --trust-ca"),
            (["partner", "add", "delta", "--crl", directory.file("gamma.crl")], "delta has no --trust-ca"),
        ]
        for (arguments, says) in cases {
            let result = try fixture.wharf(arguments)
            #expect(result.status != 0 && result.stderr.contains(says), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("\u{1b}"), "\(result.stderr)")
            #expect(try fixture.snapshot() == before, "\(arguments)")
        }
        // A partner keeps no CRL without the CA that signs it.
        try fixture.succeed("partner", "update", "gamma", "--crl", directory.file("gamma.crl"))
        let withList = try fixture.snapshot()
        let orphan = try fixture.wharf("partner", "update", "gamma", "--remove-trust-ca")
        #expect(orphan.status != 0 && orphan.stderr.contains("--remove-crl"), "\(orphan.stderr)")
        #expect(try fixture.snapshot() == withList)
        try fixture.succeed("partner", "update", "gamma", "--remove-trust-ca", "--remove-crl")
        #expect(try fixture.partnerJSON("gamma")["crl"] is NSNull)
    }
}
