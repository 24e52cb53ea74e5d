import Foundation
import Testing
import WharfTestSupport

/// The `wharf` commands against a temporary home, checked with the tools partners use.
@Suite struct CommandTests {
    let fixture: WharfHomeFixture

    init() throws {
        fixture = try WharfHomeFixture()
        try fixture.succeed("init", "--server-name", "gw.example.com")
    }

    func openssl(_ arguments: String...) throws -> CommandResult {
        try Command.run("openssl", arguments)
    }

    @Test func initWritesThePKIWithPrivateKeysReadableByTheOwnerOnly() throws {
        for key in ["ca.key", "identity-ca.key", "server.key", "client.key"] {
            let mode = try FileManager.default.attributesOfItem(atPath: "\(fixture.home)/pki/\(key)")[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(key)")
        }
        let ca = "\(fixture.home)/pki/identity-ca.crt"
        #expect(try openssl("verify", "-CAfile", ca, "-purpose", "sslserver", "-verify_hostname", "gw.example.com", "\(fixture.home)/pki/server.crt").succeeded)
        #expect(try openssl("verify", "-CAfile", ca, "-purpose", "sslclient", "\(fixture.home)/pki/client.crt").succeeded)
        let names = try openssl("x509", "-noout", "-ext", "subjectAltName", "-in", "\(fixture.home)/pki/server.crt").stdout
        for name in ["DNS:gw.example.com", "DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"] {
            #expect(names.contains(name), "\(names)")
        }
        let hostname = try Command.run("hostname", []).stdout.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        #expect(names.contains("DNS:\(hostname)"))
        #expect(FileManager.default.fileExists(atPath: "\(fixture.home)/partners"))
        #expect(FileManager.default.fileExists(atPath: "\(fixture.home)/spool"))
    }

    @Test func caShowPrintsTheFingerprintsOpenSSLComputes() throws {
        let shown = try fixture.succeed("ca", "show").stdout
        for file in ["ca.crt", "identity-ca.crt", "server.crt", "client.crt"] {
            let fingerprint = try openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", "\(fixture.home)/pki/\(file)").stdout
            let colons = try #require(fingerprint.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(shown.contains(colons.replacingOccurrences(of: ":", with: "").lowercased()), "\(file)")
        }
        #expect(shown.contains("expires"))
    }

    @Test func reissueServerReplacesOnlyTheServerCertificate() throws {
        let caBefore = try String(contentsOfFile: "\(fixture.home)/pki/ca.crt", encoding: .utf8)
        let serverBefore = try String(contentsOfFile: "\(fixture.home)/pki/server.crt", encoding: .utf8)
        try fixture.succeed("ca", "reissue-server", "--server-name", "files.example.net")
        let serverAfter = try String(contentsOfFile: "\(fixture.home)/pki/server.crt", encoding: .utf8)
        #expect(serverAfter != serverBefore)
        #expect(try String(contentsOfFile: "\(fixture.home)/pki/ca.crt", encoding: .utf8) == caBefore)
        #expect(try openssl("verify", "-CAfile", "\(fixture.home)/pki/identity-ca.crt", "-verify_hostname", "files.example.net", "\(fixture.home)/pki/server.crt").succeeded)
        let key = try openssl("pkey", "-pubout", "-in", "\(fixture.home)/pki/server.key").stdout
        let certificateKey = try openssl("x509", "-noout", "-pubkey", "-in", "\(fixture.home)/pki/server.crt").stdout
        #expect(key == certificateKey)

        // Without names, the current ones are kept.
        try fixture.succeed("ca", "reissue-server")
        #expect(try openssl("verify", "-CAfile", "\(fixture.home)/pki/identity-ca.crt", "-verify_hostname", "files.example.net", "\(fixture.home)/pki/server.crt").succeeded)
    }

    @Test func issueWritesABundleThatOpenSSLAndJavaAccept() throws {
        try fixture.succeed("partner", "add", "acme", "--display-name", "Acme Corp")
        let output = try fixture.succeed("partner", "issue", "acme").stdout
        let bundle = "\(fixture.home)/partners/acme"
        #expect(output.contains("curl --cert \(bundle)/acme.crt --key \(bundle)/acme.key --cacert \(bundle)/ca.crt"))

        #expect(try openssl("verify", "-CAfile", "\(fixture.home)/pki/ca.crt", "-purpose", "sslclient", "\(bundle)/acme.crt").succeeded)
        // The bundle's ca.crt is the identity CA: it authenticates Wharf, and not the partners.
        #expect(try openssl("verify", "-CAfile", "\(bundle)/ca.crt", "-purpose", "sslserver", "\(fixture.home)/pki/server.crt").succeeded)
        #expect(try !openssl("verify", "-CAfile", "\(bundle)/ca.crt", "\(bundle)/acme.crt").succeeded)
        let subject = try openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", "\(bundle)/acme.crt").stdout
        #expect(subject.contains("CN=acme,O=Acme Corp"))
        for file in ["acme.key", "acme.p12", "acme.p12.password"] {
            let mode = try FileManager.default.attributesOfItem(atPath: "\(bundle)/\(file)")[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
        let password = try String(contentsOfFile: "\(bundle)/acme.p12.password", encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(password.count == 24)
        #expect(try openssl("pkcs12", "-in", "\(bundle)/acme.p12", "-passin", "pass:\(password)", "-nodes").succeeded)
        if Command.exists("keytool") {
            let keystore = try Command.run("keytool", ["-list", "-storetype", "PKCS12", "-keystore", "\(bundle)/acme.p12", "-storepass", password])
            #expect(keystore.stdout.contains("PrivateKeyEntry"), "\(keystore.stdout)\(keystore.stderr)")
            let truststore = try Command.run("keytool", ["-list", "-storetype", "PKCS12", "-keystore", "\(bundle)/truststore.p12", "-storepass", password])
            #expect(truststore.stdout.contains("trustedCertEntry"), "\(truststore.stdout)\(truststore.stderr)")
        }
        let readme = try String(contentsOfFile: "\(bundle)/README.md", encoding: .utf8)
        #expect(readme.contains("curl --cert acme.crt --key acme.key --cacert ca.crt"))
        #expect(readme.contains("https://gw.example.com:8443/inbox/"))
        #expect(readme.contains("server.ssl.client-auth=need"))
        #expect(!readme.contains(password))

        // The certificate is bound to the partner by its fingerprint, for its validity.
        let fingerprint = try openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", "\(bundle)/acme.crt").stdout
        let hex = try #require(fingerprint.split(separator: "=").last).replacingOccurrences(of: ":", with: "").lowercased()
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let identities = try #require(try fixture.partnerJSON("acme")["identities"] as? [[String: Any]])
        #expect(identities.count == 1)
        #expect(identities.first?["kind"] as? String == "fingerprint")
        #expect(identities.first?["value"] as? String == hex)
        #expect(identities.first?["not_after"] is String)
    }

    @Test func reissuingKeepsTheOldCertificateBoundForRollover() throws {
        try fixture.succeed("partner", "add", "acme")
        let passwordFile = try fixture.directory.write("password.txt", "s3cret-password\n")
        try fixture.succeed("partner", "issue", "acme", "--p12-password-file", passwordFile)
        let first = try String(contentsOfFile: "\(fixture.home)/partners/acme/acme.crt", encoding: .utf8)
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.home)/partners/acme/acme.p12.password"))
        #expect(try openssl("pkcs12", "-in", "\(fixture.home)/partners/acme/acme.p12", "-passin", "pass:s3cret-password", "-nodes").succeeded)

        try fixture.succeed("partner", "issue", "acme", "--days", "30")
        let second = try String(contentsOfFile: "\(fixture.home)/partners/acme/acme.crt", encoding: .utf8)
        #expect(first != second)
        #expect(try (fixture.partnerJSON("acme")["identities"] as? [Any])?.count == 2)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/partners")
        #expect(leftovers == ["acme"])
    }

    @Test func issueWritesToOut() throws {
        try fixture.succeed("partner", "add", "acme")
        let out = fixture.directory.file("for-acme")
        try fixture.succeed("partner", "issue", "acme", "--out", out)
        #expect(try openssl("verify", "-CAfile", "\(fixture.home)/pki/ca.crt", "\(out)/acme.crt").succeeded)
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.home)/partners/acme"))
    }

    @Test func addUpdateShowAndListAgree() throws {
        let ca = "\(fixture.home)/pki/ca.crt"
        try fixture.succeed(
            "partner", "add", "acme", "--display-name", "Acme Corp",
            "--subject", "C = US, O = Acme, CN = gw1", "--fingerprint", String(repeating: "AB:", count: 31) + "AB",
            "--not-before", "2026-01-01", "--not-after", "2030-01-01T00:00:00Z",
            "--trust-ca", ca, "--url", "https://files.acme.example/in/", "--server-ca", ca,
            "--pin", "sha256//AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            "--client-cert", "\(fixture.home)/pki/client.crt", "--client-key", "\(fixture.home)/pki/client.key"
        )
        var json = try fixture.partnerJSON("acme")
        #expect(json["display_name"] as? String == "Acme Corp")
        #expect(json["status"] as? String == "active")
        let identities = try #require(json["identities"] as? [[String: Any]])
        #expect(identities.map { $0["value"] as? String } == ["CN=gw1,O=Acme,C=US", String(repeating: "ab", count: 32)])
        #expect(identities.first?["not_before"] as? String == "2026-01-01T00:00:00Z")
        let outbound = try #require(json["outbound"] as? [String: Any])
        #expect(outbound["url"] as? String == "https://files.acme.example/in")
        #expect((outbound["pins"] as? [String])?.count == 1)
        #expect((outbound["client_certificate"] as? [String: Any])?["subject"] as? String != nil)
        #expect((json["trust_ca"] as? [Any])?.count == 1)
        #expect(!(try fixture.succeed("partner", "show", "acme", "--json").stdout.contains("PRIVATE KEY")))

        try fixture.succeed(
            "partner", "update", "acme", "--remove-subject", "CN=gw1,O=Acme,C=US", "--subject", "CN=gw2,O=Acme,C=US",
            "--pin", "sha256//AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=", "--remove-client-cert"
        )
        json = try fixture.partnerJSON("acme")
        let updated = try #require(json["identities"] as? [[String: Any]])
        #expect(updated.map { $0["value"] as? String } == [String(repeating: "ab", count: 32), "CN=gw2,O=Acme,C=US"])
        #expect(((json["outbound"] as? [String: Any])?["pins"] as? [String])?.count == 2)
        #expect((json["outbound"] as? [String: Any])?["client_certificate"] is NSNull)
        // The subject identities keep their CA (removing it is refused while they exist).
        #expect((json["trust_ca"] as? [Any])?.count == 1)

        try fixture.succeed("partner", "add", "beta")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(fixture.succeed("partner", "list", "--json").stdout.utf8)) as? [[String: Any]])
        #expect(list.map { $0["name"] as? String } == ["acme", "beta"])
        let table = try fixture.succeed("partner", "list").stdout
        #expect(table.contains("acme") && table.contains("https://files.acme.example/in") && table.contains("beta"))
        #expect(try fixture.succeed("partner", "show", "acme").stdout.contains("identity      subject CN=gw2,O=Acme,C=US"))
    }

    @Test func deliverySettingsOfAPartnerAreShown() throws {
        try fixture.succeed("partner", "add", "acme", "--retry-initial", "5", "--max-attempts", "3", "--max-deliveries", "2")
        let outbound = try #require(try fixture.partnerJSON("acme")["outbound"] as? [String: Any])
        #expect(outbound["retry_initial_seconds"] as? Double == 5)
        #expect(outbound["max_attempts"] as? Int == 3)
        #expect(outbound["max_deliveries"] as? Int == 2)
        #expect(outbound["max_age_seconds"] is NSNull)
        let text = try fixture.succeed("partner", "show", "acme").stdout
        #expect(text.contains("retries       first retry within 5.0 s, 3 attempts, 2 deliveries at once"), "\(text)")
    }

    @Test func disableEnableAndRemove() throws {
        try fixture.succeed("partner", "add", "acme", "--subject", "CN=gw", "--trust-ca", "\(fixture.home)/pki/ca.crt")
        try fixture.succeed("partner", "disable", "acme")
        #expect(try fixture.partnerJSON("acme")["status"] as? String == "disabled")
        try fixture.succeed("partner", "enable", "acme")
        #expect(try fixture.partnerJSON("acme")["status"] as? String == "active")
        try fixture.succeed("partner", "remove", "acme")
        #expect(try fixture.wharf("partner", "show", "acme").status != 0)
        // The identity is free again.
        try fixture.succeed("partner", "add", "beta", "--subject", "CN=gw", "--trust-ca", "\(fixture.home)/pki/ca.crt")
    }

    @Test func theHomeComesFromWHARF_HOMEWhenNotGiven() throws {
        try fixture.succeed("partner", "add", "acme")
        let result = try Command.run(WharfHomeFixture.binary, ["partner", "list", "--json"], environment: ["WHARF_HOME": fixture.home])
        #expect(result.succeeded, "\(result.stderr)")
        #expect(result.stdout.contains("\"acme\""))
    }

    @Test func helpDescribesEveryPartnerCommand() throws {
        let help = try Command.run(WharfHomeFixture.binary, ["partner", "--help"]).stdout
        for command in ["add", "update", "list", "show", "enable", "disable", "remove", "issue"] {
            #expect(help.contains("  \(command) "), "\(command)")
        }
    }
}

/// Commands that must not hide work: what they leave pending, and what they did.
@Suite struct HonestCommandTests {
    let fixture: WharfHomeFixture
    let files: TemporaryDirectory

    init() throws {
        fixture = try WharfHomeFixture()
        files = try TemporaryDirectory("wharf-honest")
        try fixture.succeed("init")
    }

    @Test func partnerAddMakesItsDropFolder() throws {
        try fixture.succeed("partner", "add", "acme")
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: "\(fixture.home)/spool/outbound/acme", isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    @Test func removingAPartnerWithPendingWorkNamesItAndForceCancelsItFirst() throws {
        // Nothing listens at this URL, and nothing delivers: the transfers stay queued.
        try fixture.succeed("partner", "add", "acme", "--url", "https://127.0.0.1:9/inbox")
        try files.write("a.xml", "<a/>")
        try files.write("b.xml", "<b/>")
        let sent = try fixture.succeed("send", "acme", files.file("a.xml"), files.file("b.xml")).stdout
        let ids = sent.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(ids.count == 2)
        try fixture.succeed("schedule", "add", "acme", "--cron", "0 6 * * *", "--from", files.path)

        let before = try fixture.snapshot()
        let refused = try fixture.wharf("partner", "remove", "acme")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("still has 2 pending transfers: ") && refused.stderr.contains(" and schedule 1"), "\(refused.stderr)")
        for id in ids { #expect(refused.stderr.contains(id)) }
        #expect(refused.stderr.contains("--force"))
        #expect(try fixture.snapshot() == before)

        let forced = try fixture.succeed("partner", "remove", "acme", "--force").stdout
        for id in ids { #expect(forced.contains("Cancelled transfer \(id)"), "\(forced)") }
        #expect(forced.contains("Removed schedule 1") && forced.contains("Removed partner acme"))
        let listed = try fixture.succeed("transfers", "list").stdout
        #expect(listed.split(separator: "\n").allSatisfy { $0.contains("cancelled") }, "\(listed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(fixture.home)/spool/outgoing").isEmpty)
        #expect(try fixture.succeed("schedule", "list").stdout.contains("No schedules."))
        #expect(try fixture.wharf("partner", "show", "acme").status == 1)
    }

    @Test func helpForACommandThatDoesNotExistFails() throws {
        let result = try Command.run(WharfHomeFixture.binary, ["help", "nosuch"])
        #expect(result.status == 1, "\(result.stdout)")
        #expect(result.stderr == "wharf: there is no command 'nosuch'; `wharf --help` lists the commands\n")
        #expect(try Command.run(WharfHomeFixture.binary, ["help", "partner", "nosuch"]).status == 1)
        #expect(try Command.run(WharfHomeFixture.binary, ["help", "partner", "remove"]).status == 0)
    }
}

@Suite struct StatusTests {
    let fixture: WharfHomeFixture

    init() throws {
        fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        try fixture.succeed("partner", "add", "acme")
        try fixture.succeed("partner", "issue", "acme")
    }

    func json(_ result: CommandResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
    }

    @Test func aHealthyHomeIsOKAndExitsZero() throws {
        let text = try fixture.succeed("status").stdout
        #expect(text.hasPrefix("OK\n"), "\(text)")
        #expect(text.contains("none expires within 30 days"))
        let report = try json(fixture.succeed("status", "--json"))
        #expect(report["needs_operator"] as? Bool == false)
        #expect((report["transfers"] as? [String: Int])?["queued"] == 0)
    }

    @Test func aPartnerIdentityAboutToExpireIsNamedAndNeedsAnOperator() throws {
        let soon = Date().addingTimeInterval(3 * 86_400 + 3600).formatted(.iso8601)
        let fingerprint = String(repeating: "ab", count: 32)
        try fixture.succeed("partner", "add", "beta", "--fingerprint", fingerprint, "--not-after", soon)
        let result = try fixture.wharf("status", "--json")
        #expect(result.status == 1)
        let report = try json(result)
        #expect(report["needs_operator"] as? Bool == true)
        let expiring = try #require(report["expiring_certificates"] as? [[String: Any]])
        #expect(expiring.count == 1, "\(expiring)")
        #expect(expiring.first?["partner"] as? String == "beta" && expiring.first?["kind"] as? String == "partner")
        #expect(expiring.first?["days_left"] as? Int == 3 && expiring.first?["fingerprint"] as? String == fingerprint)
        let text = try fixture.wharf("status").stdout
        #expect(text.contains("NEEDS AN OPERATOR") && text.contains("partner beta expires in 3 days"), "\(text)")
        // partner list shows each partner's earliest expiry.
        let listed = try fixture.succeed("partner", "list").stdout
        #expect(listed.contains(String(soon.prefix(10))), "\(listed)")
    }

    @Test func aDeadTransferNeedsAnOperator() throws {
        try fixture.succeed("partner", "add", "gone", "--url", "https://127.0.0.1:9/inbox", "--max-attempts", "1")
        let file = fixture.directory.file("a.xml")
        try "<a/>".write(toFile: file, atomically: false, encoding: .utf8)
        try fixture.succeed("send", "gone", file)
        #expect(try fixture.wharf("deliver", "--once").status == 1)
        let result = try fixture.wharf("status")
        #expect(result.status == 1)
        #expect(result.stdout.contains("1 dead transfer") && result.stdout.contains("Dead "), "\(result.stdout)")
    }
}

@Suite struct OperatorAuditTests {
    @Test func operatorsChangesAreAuditedWithTheirUserAndTamperingIsNamed() throws {
        let fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        try fixture.succeed("partner", "add", "acme")
        try fixture.succeed("partner", "issue", "acme")
        try fixture.succeed("partner", "disable", "acme")

        let listed = try fixture.succeed("audit", "list", "--kind", "admin", "--json").stdout
        let events = try #require(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]])
        #expect(events.map { $0["command"] as? String } == ["partner disable", "partner issue", "partner add"], "\(listed)")
        let user = try Command.run("id", ["-un"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(events.allSatisfy { $0["actor"] as? String == user && $0["partner"] as? String == "acme" })
        #expect(!listed.contains("PRIVATE KEY"), "no secret in the trail")
        #expect(try fixture.succeed("audit", "verify").stdout.contains("intact: 3 events"))
        let head = try fixture.succeed("audit", "head").stdout.split(separator: " ").first.map(String.init) ?? ""
        #expect(head.count == 64)

        // Edited with sqlite3, as someone covering their tracks would.
        let database = "\(fixture.home)/wharf.sqlite"
        _ = try Command.run("sqlite3", [database, "UPDATE audit_event SET detail = 'status active' WHERE id = 3"])
        let edited = try fixture.wharf("audit", "verify")
        #expect(edited.status == 1)
        #expect(edited.stderr.contains("broken at event 3: its content is not what was recorded"), "\(edited.stderr)")

        _ = try Command.run("sqlite3", [database, "DELETE FROM audit_event WHERE id = 3"])
        #expect(try fixture.wharf("audit", "verify").status == 0, "the last event removed leaves a whole chain")
        let against = try fixture.wharf("audit", "verify", "--head", head)
        #expect(against.status == 1 && against.stderr.contains("not at the head"), "\(against.stderr)")
    }
}

@Suite struct FingerprintFormatTests {
    /// Every place Wharf prints a fingerprint prints the same 64 lower-case hex digits,
    /// which `openssl x509 -outform DER | sha256sum` prints too; none prints OpenSSL's
    /// colon-separated form.
    @Test func fingerprintsPrintOneWayEverywhere() throws {
        let fixture = try WharfHomeFixture()
        let initialised = try fixture.succeed("init").stdout
        try fixture.succeed("partner", "add", "acme")
        let issued = try fixture.succeed("partner", "issue", "acme").stdout
        let shown = try fixture.succeed("ca", "show").stdout
        let readme = try String(contentsOfFile: "\(fixture.home)/partners/acme/README.md", encoding: .utf8)
        let json = try fixture.succeed("partner", "show", "acme", "--json").stdout

        func digest(_ certificate: String) throws -> String {
            let result = try Command.run("sh", ["-c", "openssl x509 -in \"$0\" -outform DER | sha256sum", certificate])
            return String(result.stdout.prefix(64))
        }
        let ca = try digest("\(fixture.home)/pki/ca.crt")
        let partner = try digest("\(fixture.home)/partners/acme/acme.crt")
        #expect(initialised.contains(ca))
        #expect(shown.contains(ca))
        #expect(issued.contains(partner))
        #expect(readme.contains(partner))
        #expect(json.contains(partner))
        let colonForm = /[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}/
        for (place, text) in [("init", initialised), ("partner issue", issued), ("ca show", shown), ("bundle README", readme), ("JSON", json)] {
            #expect(text.firstMatch(of: colonForm) == nil, "\(place) prints a colon-separated fingerprint")
        }
    }
}

@Suite struct EscapedOutputTests {
    /// A certificate subject is text from outside: a partner's CA named with an escape
    /// sequence, a newline and a right-to-left override reaches the terminal escaped.
    @Test func subjectsFromOutsideArePrintedEscaped() throws {
        let fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        let directory = try TemporaryDirectory("wharf-evil")
        let subject = "/CN=Evil\u{1b}[2J\u{202e}Corp"
        let made = try Command.run("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-utf8",
            "-keyout", directory.file("ca.key"), "-out", directory.file("ca.crt"), "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign",
        ])
        #expect(made.succeeded, "\(made.stderr)")
        try fixture.succeed("partner", "add", "evil", "--trust-ca", directory.file("ca.crt"), "--subject", "CN=evil")
        for command in [["partner", "show", "evil"], ["partner", "list"], ["audit", "list"]] {
            let result = try fixture.wharf(command)
            #expect(result.succeeded, "\(command): \(result.stderr)")
            let output = result.stdout
            #expect(!output.unicodeScalars.contains { $0 == "\u{1b}" || $0 == "\u{202e}" }, "\(command): raw control text")
            if command == ["partner", "show", "evil"] {
                #expect(output.contains(#"Evil\u{1b}[2J\u{202e}Corp"#), "\(output)")
            }
        }
    }
}
