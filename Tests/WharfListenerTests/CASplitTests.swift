import Foundation
import Testing
import WharfPKI
import WharfTestSupport
import X509

/// Two CAs: the partner CA signs partners' client certificates, the identity CA Wharf's
/// own, and partners trust the identity CA only. A home with one CA moves to two with
/// `wharf ca split`, and every partner keeps working through the overlap.
@Suite(.serialized) struct CASplitTests {
    func openssl(_ arguments: String...) async throws -> CommandResult {
        try await Command.runAsync("openssl", arguments)
    }

    /// The SHA-256 fingerprints of every certificate in a PEM file, in order.
    func fingerprints(_ path: String) throws -> [String] {
        try Certificate.parseAll(pem: try String(contentsOfFile: path, encoding: .utf8), source: path).map(\.fingerprint.hex)
    }

    func status(_ fixture: WharfHomeFixture) async throws -> (layout: String, trust: [String]) {
        let text = try await fixture.succeed("ca", "status", "--json").stdout
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
        return (try #require(object["layout"] as? String), try #require(object["partners_trust"] as? [String]))
    }

    @Test func aNewHomeHasAPartnerCAAndAnIdentityCAThatPartnersTrustAlone() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let pki = "\(fixture.home)/pki"
        let bundle = "\(fixture.home)/partners/acme"
        let identity = try fingerprints("\(pki)/identity-ca.crt")
        let partnerCA = try fingerprints("\(pki)/ca.crt")
        #expect(identity != partnerCA)
        #expect(try await status(fixture) == ("separate", identity))
        #expect(try await fixture.succeed("ca", "status").stdout.contains("Separate CAs"))

        // Wharf's own certificates chain to the identity CA only, the partner's to the partner CA only.
        for (certificate, purpose) in [("server.crt", "sslserver"), ("client.crt", "sslclient")] {
            #expect(try await openssl("verify", "-CAfile", "\(pki)/identity-ca.crt", "-purpose", purpose, "\(pki)/\(certificate)").succeeded)
            #expect(try await !openssl("verify", "-CAfile", "\(pki)/ca.crt", "\(pki)/\(certificate)").succeeded, "\(certificate)")
        }
        #expect(try await openssl("verify", "-CAfile", "\(pki)/ca.crt", "-purpose", "sslclient", "\(bundle)/acme.crt").succeeded)
        #expect(try await !openssl("verify", "-CAfile", "\(pki)/identity-ca.crt", "\(bundle)/acme.crt").succeeded)

        // The bundle gives the partner the identity CA to trust, and nothing else.
        #expect(try fingerprints("\(bundle)/ca.crt") == identity)
        #expect(try await fixture.succeed("ca", "trust-bundle").stdout.contains(try String(contentsOfFile: "\(pki)/identity-ca.crt", encoding: .utf8).trimmingCharacters(in: .newlines)))
        let readme = try String(contentsOfFile: "\(bundle)/README.md", encoding: .utf8)
        #expect(readme.contains("Wharf's identity CA") && readme.contains("and nothing else Wharf sends you"), "\(readme)")
        if Command.exists("keytool") {
            let password = try String(contentsOfFile: "\(bundle)/acme.p12.password", encoding: .utf8).trimmingCharacters(in: .newlines)
            let listed = try await Command.runAsync("keytool", ["-list", "-storetype", "PKCS12", "-keystore", "\(bundle)/truststore.p12", "-storepass", password])
            #expect(listed.stdout.components(separatedBy: "trustedCertEntry").count == 2, "\(listed.stdout)")
        }

        let gateway = try await TestGateway.start(fixture: fixture)
        let file = try gateway.randomFile("a.txt", size: 100)
        let upload = try await gateway.put(file.path, as: "a.txt")
        try await gateway.stop()
        #expect(upload.status == 201, "\(upload.body) \(upload.stderr)")
    }

    @Test func splittingAHomeWithOneCAKeepsEveryPartnerWorkingThroughTheOverlap() async throws {
        let fixture = try TestGateway.homeWithOneCA()
        try await fixture.succeed("partner", "add", "acme", "--display-name", "Acme Corp")
        try await fixture.succeed("partner", "issue", "acme")
        let pki = "\(fixture.home)/pki"
        let oldCA = try fingerprints("\(pki)/ca.crt")
        #expect(try await status(fixture) == ("one_ca", oldCA))
        #expect(try await fixture.succeed("ca", "status").stdout.contains("wharf ca split"))
        let serverKey = try await openssl("pkey", "-pubout", "-in", "\(pki)/server.key").stdout

        let gateway = try await TestGateway.start(fixture: fixture)
        let file = try gateway.randomFile("a.txt", size: 100)
        #expect(try await gateway.put(file.path, as: "before.txt").status == 201)

        // Step 1: an identity CA; nothing changes for partners yet.
        try await fixture.succeed("ca", "split")
        let identity = try fingerprints("\(pki)/identity-ca.crt")
        #expect(try await status(fixture) == ("overlap", identity + oldCA))
        let during = try await gateway.put(file.path, as: "during.txt")
        #expect(during.status == 201, "\(during.body) \(during.stderr)")
        try await fixture.succeed("partner", "add", "beta")
        try await fixture.succeed("partner", "issue", "beta")
        #expect(try fingerprints("\(fixture.home)/partners/beta/ca.crt") == identity + oldCA)
        let trust = fixture.directory.file("trust.pem")
        try await fixture.succeed("ca", "trust-bundle", "--out", trust)
        #expect(try fingerprints(trust) == identity + oldCA)

        // Step 2: Wharf's certificates move to the identity CA, with the same keys, and
        // the running gateway serves the new server certificate without a restart.
        try await fixture.succeed("ca", "split", "--retire-old")
        #expect(try await status(fixture) == ("separate", identity))
        #expect(try await openssl("pkey", "-pubout", "-in", "\(pki)/server.key").stdout == serverKey)
        #expect(try await openssl("verify", "-CAfile", "\(pki)/identity-ca.crt", "-purpose", "sslclient", "\(pki)/client.crt").succeeded)
        // acme's old bundle trusts the old CA only: it no longer authenticates Wharf…
        let stale = try await gateway.put(file.path, as: "stale.txt")
        #expect(stale.curlStatus == 60, "\(stale.stderr)")
        // …the trust bundle it was sent does, and its certificate from the old CA still counts.
        let after = try await gateway.curl([
            "--cert", "\(fixture.home)/partners/acme/acme.crt", "--key", "\(fixture.home)/partners/acme/acme.key",
            "--cacert", trust, "--upload-file", file.path, gateway.url("/inbox/after.txt"),
        ], as: nil)
        #expect(after.status == 201, "\(after.body) \(after.stderr)")
        #expect(try await gateway.put(file.path, as: "beta.txt", partner: "beta").status == 201)
        try await gateway.stop()

        let audit = try await fixture.succeed("audit", "list").stdout
        #expect(audit.contains("created the identity CA") && audit.contains("retired the old CA"), "\(audit)")
    }

    @Test func eachStepOutOfOrderIsRefusedAndChangesNothing() async throws {
        let fixture = try TestGateway.homeWithOneCA()
        let before = try fixture.snapshot()
        let early = try await fixture.wharf("ca", "split", "--retire-old")
        #expect(early.status != 0 && early.stderr.contains("run `wharf ca split` first"), "\(early.stderr)")
        #expect(try fixture.snapshot() == before)

        try await fixture.succeed("ca", "split")
        let split = try fixture.snapshot()
        let again = try await fixture.wharf("ca", "split")
        #expect(again.status != 0 && again.stderr.contains("--retire-old"), "\(again.stderr)")
        #expect(try fixture.snapshot() == split)

        try await fixture.succeed("ca", "split", "--retire-old")
        let separate = try fixture.snapshot()
        let third = try await fixture.wharf("ca", "split")
        #expect(third.status != 0 && third.stderr.contains("separate partner and identity CAs already"), "\(third.stderr)")
        let retired = try await fixture.succeed("ca", "split", "--retire-old").stdout
        #expect(retired.contains("nothing changed"), "\(retired)")
        #expect(try fixture.snapshot() == separate)
    }
}
