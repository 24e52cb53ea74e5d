import Foundation
import Testing
import WharfTestSupport

/// Wharf's own keys stay put unless the operator moves them, and move in two steps so that
/// partners pinning them (curl `--pinnedpubkey`) never break.
@Suite(.serialized) struct KeyContinuityTests {
    func openssl(_ arguments: String...) async throws -> CommandResult {
        try await Command.runAsync("openssl", arguments)
    }

    /// The pin of a certificate's key as curl computes it.
    func pin(ofCertificate path: String) async throws -> String {
        let pipeline = "openssl x509 -noout -pubkey -in \"$1\" | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64"
        let result = try await Command.runAsync("bash", ["-o", "pipefail", "-c", pipeline, "pin", path])
        try #require(result.succeeded, "\(result.stderr)")
        return "sha256//" + result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func reissueServerKeepsTheKeyUnlessToldToMakeANewOne() async throws {
        let fixture = try WharfHomeFixture()
        try await fixture.succeed("init")
        let server = "\(fixture.home)/pki/server.crt"
        let before = try await pin(ofCertificate: server)
        let certificateBefore = try String(contentsOfFile: server, encoding: .utf8)

        let kept = try await fixture.succeed("ca", "reissue-server").stdout
        #expect(try String(contentsOfFile: server, encoding: .utf8) != certificateBefore, "no new certificate")
        #expect(try await pin(ofCertificate: server) == before)
        #expect(kept.contains("key pin  \(before)  (unchanged)"), "\(kept)")

        let renewed = try await fixture.succeed("ca", "reissue-server", "--new-key").stdout
        let after = try await pin(ofCertificate: server)
        #expect(after != before)
        #expect(renewed.contains("key pin  \(after)  (new"), "\(renewed)")
        #expect(try await openssl("verify", "-CAfile", "\(fixture.home)/pki/identity-ca.crt", "-purpose", "sslserver", server).succeeded)
    }

    @Test func aStagedServerKeyIsActivatedWhilePinningPartnersKeepConnecting() async throws {
        let gateway = try await TestGateway.start()
        let fixture = gateway.fixture
        let pki = "\(fixture.home)/pki"
        let current = try await pin(ofCertificate: "\(pki)/server.crt")

        let staged = try await fixture.succeed("ca", "rotate-key", "server", "--stage").stdout
        let next = try #require(staged.split(separator: "\n").first { $0.contains("next pin") }?.split(separator: " ").last).description
        #expect(next.hasPrefix("sha256//") && next != current, "\(staged)")
        let mode = try FileManager.default.attributesOfItem(atPath: "\(pki)/server.next.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try await pin(ofCertificate: "\(pki)/server.crt") == current, "staging changed the key in use")
        let shown = try await fixture.succeed("ca", "show").stdout
        #expect(shown.contains("key pin      \(current)") && shown.contains("staged pin   \(next)"), "\(shown)")
        let again = try await fixture.wharf("ca", "rotate-key", "server", "--stage")
        #expect(again.status != 0 && again.stderr.contains("already staged"), "\(again.stderr)")

        let file = try gateway.randomFile("a.txt", size: 100)
        let both = ["--pinnedpubkey", "\(current);\(next)"]
        #expect(try await gateway.put(file.path, as: "before.txt", headers: []).status == 201)
        #expect(try await gateway.curl(both + ["--upload-file", file.path, gateway.url("/inbox/both-before.txt")]).status == 201)

        let activated = try await fixture.succeed("ca", "rotate-key", "server", "--activate").stdout
        #expect(activated.contains("retired pin  \(current)"), "\(activated)")
        #expect(!FileManager.default.fileExists(atPath: "\(pki)/server.next.key"))
        #expect(try await pin(ofCertificate: "\(pki)/server.crt") == next)
        #expect(try await openssl("verify", "-CAfile", "\(pki)/identity-ca.crt", "-purpose", "sslserver", "-verify_hostname", "localhost", "\(pki)/server.crt").succeeded)

        // The running gateway presents the new key: a partner with both pins connects,
        // one that pinned only the old key is refused by its own curl.
        #expect(try await gateway.curl(both + ["--upload-file", file.path, gateway.url("/inbox/both-after.txt")]).status == 201)
        let oldOnly = try await gateway.curl(["--pinnedpubkey", current, "--upload-file", file.path, gateway.url("/inbox/old-after.txt")])
        #expect(oldOnly.curlStatus == 90, "curl accepted a key it did not pin: \(oldOnly.stderr)")
        try await gateway.stop()
    }

    @Test func theClientKeyRotatesToo_andDiscardDropsAStagedKey() async throws {
        let fixture = try WharfHomeFixture()
        try await fixture.succeed("init", "--organization", "Acme Logistics")
        let pki = "\(fixture.home)/pki"
        let subjectBefore = try await openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", "\(pki)/client.crt").stdout
        try await fixture.succeed("ca", "rotate-key", "client", "--stage", "--key-type", "rsa2048")
        let discarded = try await fixture.succeed("ca", "rotate-key", "client", "--discard").stdout
        #expect(discarded.contains("Discarded the staged client key"))
        #expect(!FileManager.default.fileExists(atPath: "\(pki)/client.next.key"))
        let nothing = try await fixture.wharf("ca", "rotate-key", "client", "--activate")
        #expect(nothing.status != 0 && nothing.stderr.contains("no client key is staged"), "\(nothing.stderr)")

        let before = try await pin(ofCertificate: "\(pki)/client.crt")
        try await fixture.succeed("ca", "rotate-key", "client", "--stage", "--key-type", "rsa2048")
        try await fixture.succeed("ca", "rotate-key", "client", "--activate")
        #expect(try await pin(ofCertificate: "\(pki)/client.crt") != before)
        let text = try await openssl("x509", "-noout", "-text", "-in", "\(pki)/client.crt").stdout
        #expect(text.contains("rsaEncryption") && text.contains("TLS Web Client Authentication"), "\(text)")
        #expect(try await openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", "\(pki)/client.crt").stdout == subjectBefore)
        #expect(try await openssl("verify", "-CAfile", "\(pki)/identity-ca.crt", "-purpose", "sslclient", "\(pki)/client.crt").succeeded)
        let audit = try await fixture.succeed("audit", "list").stdout
        #expect(audit.contains("activated the staged client key"), "\(audit)")
    }

    @Test func initNamesTheOrganisationAndGivesEveryCAItsOwnName() async throws {
        let first = try WharfHomeFixture()
        try await first.succeed("init", "--organization", "Acme Logistics")
        let second = try WharfHomeFixture()
        try await second.succeed("init", "--organization", "Acme Logistics")
        var subjects: [String] = []
        for home in [first.home, second.home] {
            for (file, purpose) in [("ca.crt", "partner"), ("identity-ca.crt", "identity")] {
                let subject = try await openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", "\(home)/pki/\(file)").stdout
                #expect(subject.range(of: "CN=Wharf \(purpose) CA [0-9a-f]{8},O=Acme Logistics", options: .regularExpression) != nil, "\(subject)")
                subjects.append(subject)
            }
            let server = try await openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", "\(home)/pki/server.crt").stdout
            #expect(server.contains("O=Acme Logistics"), "\(server)")
        }
        #expect(Set(subjects).count == 4, "\(subjects)")

        let refused = try WharfHomeFixture()
        let result = try await refused.wharf("init", "--organization", "Acme\n[audit] forged")
        #expect(result.status != 0 && result.stderr.contains("--organization"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(refused.home)/pki"))
        #expect(!FileManager.default.fileExists(atPath: "\(refused.home)/wharf.sqlite"))
    }
}
