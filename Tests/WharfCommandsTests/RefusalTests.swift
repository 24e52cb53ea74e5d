import Foundation
import Testing
import WharfTestSupport

/// Every refusal: one line on stderr naming the problem and the fix, a non-zero exit, and
/// the home (files and registry rows) exactly as before.
@Suite struct RefusalTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let arguments: [String]
        let says: String
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "init on an initialised home", arguments: ["init"], says: "already a Wharf home"),
        Case(label: "duplicate name", arguments: ["partner", "add", "acme"], says: "already exists"),
        Case(label: "bad slug", arguments: ["partner", "add", "Acme_Corp"], says: "not a valid partner name"),
        Case(label: "malformed DN", arguments: ["partner", "add", "beta", "--subject", "CN"], says: "not a distinguished name"),
        Case(label: "unknown DN attribute", arguments: ["partner", "add", "beta", "--subject", "XX=1"], says: "not a distinguished name"),
        Case(label: "malformed fingerprint", arguments: ["partner", "add", "beta", "--fingerprint", "abc"], says: "not a SHA-256 certificate fingerprint"),
        Case(label: "malformed pin", arguments: ["partner", "add", "beta", "--pin", "sha256//short"], says: "not a public-key pin"),
        Case(label: "plain-HTTP URL", arguments: ["partner", "add", "beta", "--url", "http://files.beta.example"], says: "not a delivery URL"),
        Case(label: "URL without scheme", arguments: ["partner", "add", "beta", "--url", "files.beta.example"], says: "not a delivery URL"),
        Case(label: "bad time", arguments: ["partner", "add", "beta", "--subject", "CN=b", "--not-after", "soon"], says: "not a time"),
        Case(label: "window that ends before it starts", arguments: ["partner", "add", "beta", "--subject", "CN=b", "--not-before", "2027-02-01", "--not-after", "2027-01-01"], says: "start before it ends"),
        Case(label: "missing file", arguments: ["partner", "add", "beta", "--trust-ca", "{dir}/missing.pem"], says: "does not exist"),
        Case(label: "unreadable file", arguments: ["partner", "add", "beta", "--server-ca", "{dir}"], says: "cannot read"),
        Case(label: "file that is not a certificate", arguments: ["partner", "add", "beta", "--server-ca", "{dir}/notes.txt"], says: "is not a certificate"),
        Case(label: "a key as certificate", arguments: ["partner", "add", "beta", "--trust-ca", "{dir}/one.key"], says: "is not a certificate"),
        Case(label: "key that does not match", arguments: ["partner", "add", "beta", "--client-cert", "{dir}/one.crt", "--client-key", "{dir}/two.key"], says: "does not belong to the certificate"),
        Case(label: "file that is not a key", arguments: ["partner", "add", "beta", "--client-cert", "{dir}/one.crt", "--client-key", "{dir}/notes.txt"], says: "not a private key"),
        Case(label: "certificate without key", arguments: ["partner", "add", "beta", "--client-cert", "{dir}/one.crt"], says: "go together"),
        Case(label: "identity of another partner", arguments: ["partner", "add", "beta", "--subject", "CN = gw, O = Acme", "--trust-ca", "{dir}/ca.crt"], says: "already identifies partner 'acme'"),
        Case(label: "a subject no trusted CA issues", arguments: ["partner", "add", "beta", "--subject", "CN=beta-gw"], says: "beta has no --trust-ca"),
        Case(label: "removing the CA of subject identities", arguments: ["partner", "update", "acme", "--remove-trust-ca"], says: "acme has no --trust-ca"),
        Case(label: "update of an unknown partner", arguments: ["partner", "update", "nobody", "--url", "https://x.example"], says: "no partner named 'nobody'"),
        Case(label: "update removing an absent pin", arguments: ["partner", "update", "acme", "--display-name", "Changed", "--remove-pin", "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="], says: "has no pin"),
        Case(label: "update removing an absent identity", arguments: ["partner", "update", "acme", "--url", "https://changed.example", "--remove-subject", "CN=nobody"], says: "has no identity"),
        Case(label: "update adding a pin it has", arguments: ["partner", "update", "acme", "--display-name", "Changed", "--pin", "sha256//AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="], says: "already has the pin"),
        Case(label: "show of an unknown partner", arguments: ["partner", "show", "nobody"], says: "no partner named 'nobody'"),
        Case(label: "disable of an unknown partner", arguments: ["partner", "disable", "nobody"], says: "no partner named 'nobody'"),
        Case(label: "enable of an unknown partner", arguments: ["partner", "enable", "nobody"], says: "no partner named 'nobody'"),
        Case(label: "remove of an unknown partner", arguments: ["partner", "remove", "nobody"], says: "no partner named 'nobody'"),
        Case(label: "issue for an unknown partner", arguments: ["partner", "issue", "nobody"], says: "no partner named 'nobody'"),
        Case(label: "issue with a short password", arguments: ["partner", "issue", "acme", "--p12-password-file", "{dir}/short.txt"], says: "shorter than 6"),
        Case(label: "issue with a missing password file", arguments: ["partner", "issue", "acme", "--p12-password-file", "{dir}/missing.txt"], says: "does not exist"),
        Case(label: "issue into a non-empty directory", arguments: ["partner", "issue", "acme", "--out", "{dir}"], says: "not empty"),
        Case(label: "issue for longer than the CA lives", arguments: ["partner", "issue", "acme", "--days", "40000"], says: "outlive the CA"),
        Case(label: "bad upload size", arguments: ["partner", "update", "acme", "--max-upload-size", "0"], says: "not a size"),
        Case(label: "serve on a bad address", arguments: ["serve", "--listen", "localhost"], says: "--listen: 'localhost' is not allowed; give HOST:PORT"),
        Case(label: "serve keeping resumable uploads for no time", arguments: ["serve", "--partial-upload-max-age", "0"], says: "--partial-upload-max-age: '0' is not allowed; give a whole number of seconds of 1 or more"),
        Case(label: "inbox of a bad partner name", arguments: ["inbox", "list", "--partner", "Not A Slug"], says: "not a valid partner name"),
        Case(label: "send to an unknown partner", arguments: ["send", "nobody", "{dir}/notes.txt"], says: "no partner named 'nobody'"),
        Case(label: "send of a missing file", arguments: ["send", "acme", "{dir}/notes.txt", "{dir}/missing.txt"], says: "does not exist"),
        Case(label: "send of a directory", arguments: ["send", "acme", "{dir}"], says: "not a readable regular file"),
        Case(label: "send to a partner without URL", arguments: ["send", "bare", "{dir}/notes.txt"], says: "has no delivery URL"),
        Case(label: "a delivery mode that is neither push nor pull", arguments: ["partner", "update", "acme", "--delivery", "sideways"], says: "is neither push nor pull"),
        Case(label: "export of an unknown receipt", arguments: ["receipt", "export", "r-nope"], says: "no receipt r-nope"),
        Case(label: "verify of a file that is not a signed receipt", arguments: ["receipt", "verify", "{dir}/notes.txt"], says: "is not a receipt JWS"),
        Case(label: "verify of a missing file", arguments: ["receipt", "verify", "{dir}/missing.json"], says: "cannot read"),
        Case(label: "schedule with a bad cron", arguments: ["schedule", "add", "acme", "--cron", "every minute", "--from", "{dir}"], says: "not a five-field cron expression"),
        Case(label: "schedule from a missing directory", arguments: ["schedule", "add", "acme", "--cron", "* * * * *", "--from", "{dir}/missing"], says: "is not a directory"),
        Case(label: "schedule for an unknown partner", arguments: ["schedule", "add", "nobody", "--cron", "* * * * *", "--from", "{dir}"], says: "no partner named 'nobody'"),
        Case(label: "schedule for a partner without URL", arguments: ["schedule", "add", "bare", "--cron", "* * * * *", "--from", "{dir}"], says: "has no delivery URL"),
        Case(label: "send --wait with no gateway running", arguments: ["send", "acme", "{dir}/notes.txt", "--wait"], says: "no gateway is running"),
        Case(label: "remove of a partner with a schedule", arguments: ["partner", "remove", "busy"], says: "still has schedule 1"),
        Case(label: "retry of an unknown transfer", arguments: ["transfers", "retry", "t-none"], says: "no transfer t-none"),
        Case(label: "deliver without --once", arguments: ["deliver"], says: "needs --once"),
        Case(label: "audit list since a bad time", arguments: ["audit", "list", "--since", "yesterday"], says: "is not a time"),
        Case(label: "audit verify against another head", arguments: ["audit", "verify", "--head", "0000"], says: "not at the head 0000"),
        Case(label: "bad retry setting", arguments: ["partner", "update", "acme", "--max-attempts", "0"], says: "at least 1"),
        Case(label: "a display name with an escape sequence", arguments: ["partner", "add", "evil", "--display-name", "Evil\u{1b}[2J Corp"], says: "contains a control or bidirectional formatting character"),
        Case(label: "a display name with a bidi override", arguments: ["partner", "update", "acme", "--display-name", "Acme \u{202e}gpj.exe"], says: "contains a control or bidirectional formatting character"),
        Case(label: "unban of an address not banned", arguments: ["defender", "unban", "192.0.2.7"], says: "192.0.2.7 is not banned"),
        Case(label: "unban of something not an address", arguments: ["defender", "unban", "example.com"], says: "'example.com' is not an IP address"),
        Case(label: "revoke for a partner without a certificate identity", arguments: ["partner", "revoke", "bare"], says: "is identified by no certificate fingerprint"),
        Case(label: "revoke of a fingerprint not the partner's", arguments: ["partner", "revoke", "acme", "--fingerprint", String(repeating: "ab", count: 32)], says: "has no identity with fingerprint"),
        Case(label: "revoke by a serial that is not hex", arguments: ["ca", "revoke", "--serial", "12:zz"], says: "is not a certificate serial number"),
        Case(label: "reissue for a bad server name", arguments: ["ca", "reissue-server", "--server-name", "bad name"], says: "not a host name"),
        Case(label: "a hook with neither --exec nor --url", arguments: ["hook", "add", "--on", "received"], says: "give exactly one of --exec and --url"),
        Case(label: "a hook with both --exec and --url", arguments: ["hook", "add", "--on", "received", "--exec", "/bin/true", "--url", "https://x.example"], says: "give exactly one of --exec and --url"),
        Case(label: "a hook on an unknown event", arguments: ["hook", "add", "--on", "arrived", "--exec", "/bin/true"], says: "--on 'arrived' is not one of received, delivered, dead"),
        Case(label: "a hook for an unknown partner", arguments: ["hook", "add", "--on", "dead", "--partner", "nobody", "--exec", "/bin/true"], says: "no partner named 'nobody'"),
        Case(label: "a hook running a missing program", arguments: ["hook", "add", "--on", "received", "--exec", "{dir}/missing.sh --flag"], says: "is not an executable file"),
        Case(label: "a hook running a file that is not executable", arguments: ["hook", "add", "--on", "received", "--exec", "{dir}/notes.txt"], says: "is not an executable file"),
        Case(label: "a hook command with an open quote", arguments: ["hook", "add", "--on", "received", "--exec", "/bin/echo 'unclosed"], says: "unclosed quote"),
        Case(label: "a hook posting plain http to another machine", arguments: ["hook", "add", "--on", "received", "--url", "http://ingest.example.com/events"], says: "plain http to another machine"),
        Case(label: "a hook posting to a URL with a password", arguments: ["hook", "add", "--on", "received", "--url", "https://user:secret@ingest.example.com/"], says: "must not carry a user or password"),
        Case(label: "a hook with a CA file that is not PEM", arguments: ["hook", "add", "--on", "received", "--url", "https://ingest.example.com/", "--ca-file", "{dir}/notes.txt"], says: "is not a readable PEM file"),
        Case(label: "a hook with no attempts", arguments: ["hook", "add", "--on", "received", "--exec", "/bin/true", "--max-attempts", "0"], says: "--max-attempts must be at least 1"),
        Case(label: "removal of an unknown hook", arguments: ["hook", "remove", "42"], says: "no hook with id 42"),
        Case(label: "test of an unknown hook", arguments: ["hook", "test", "42"], says: "no hook with id 42"),
        Case(label: "a CA file for a command hook", arguments: ["hook", "add", "--on", "received", "--exec", "/bin/true", "--ca-file", "{dir}/ca.crt"], says: "--ca-file goes with --url"),
        Case(label: "a hook posting to a URL that is not one", arguments: ["hook", "add", "--on", "received", "--url", "ingest events"], says: "is not a URL"),
        Case(label: "a hook posting over another scheme", arguments: ["hook", "add", "--on", "received", "--url", "ftp://ingest.example.com/"], says: "must be https or http, not ftp"),
        Case(label: "a hook with a negative first retry", arguments: ["hook", "add", "--on", "received", "--exec", "/bin/true", "--retry-initial=-1"], says: "--retry-initial must be 0 or more seconds"),
        Case(label: "a hook with no time to run", arguments: ["hook", "add", "--on", "received", "--exec", "/bin/true", "--timeout", "0"], says: "--timeout must be more than 0"),
        Case(label: "hook events of a bad partner name", arguments: ["hook", "events", "--partner", "Not A Slug"], says: "not a valid partner name"),
        Case(label: "hook events in an unknown state", arguments: ["hook", "events", "--state", "lost"], says: "--state 'lost' is not one of pending, done, failed"),
    ]

    @Test(arguments: cases)
    func refusalChangesNothing(_ refusal: Case) throws {
        let fixture = try WharfHomeFixture()
        let files = try TemporaryDirectory("wharf-input")
        try fixture.succeed("init")
        try fixture.succeed(
            "partner", "add", "acme", "--subject", "CN=gw,O=Acme", "--trust-ca", "\(fixture.home)/pki/ca.crt",
            "--url", "https://files.acme.example",
            "--pin", "sha256//AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
        )
        try fixture.succeed("partner", "issue", "acme")
        try fixture.succeed("partner", "add", "bare")
        try fixture.succeed("partner", "add", "busy", "--url", "https://files.busy.example")
        try fixture.succeed("schedule", "add", "busy", "--cron", "0 6 * * *", "--from", files.path)
        try files.write("notes.txt", "hello\n")
        try files.write("short.txt", "abc\n")
        try FileManager.default.copyItem(atPath: "\(fixture.home)/partners/acme/acme.crt", toPath: files.file("one.crt"))
        try FileManager.default.copyItem(atPath: "\(fixture.home)/partners/acme/acme.key", toPath: files.file("one.key"))
        try FileManager.default.copyItem(atPath: "\(fixture.home)/pki/client.key", toPath: files.file("two.key"))
        try FileManager.default.copyItem(atPath: "\(fixture.home)/pki/ca.crt", toPath: files.file("ca.crt"))

        let before = try fixture.snapshot()
        let arguments = refusal.arguments.map { $0.replacingOccurrences(of: "{dir}", with: files.path) }
        let result = try fixture.wharf(arguments)

        #expect(result.status != 0)
        #expect(result.stderr.contains(refusal.says), "stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("wharf: ") && result.stderr.filter { $0 == "\n" }.count == 1, "one line: \(result.stderr)")
        #expect(result.stderr.contains("; "), "a fix is offered: \(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(try fixture.snapshot() == before)
    }

    @Test func initWithABadServerNameCreatesNothing() throws {
        let fixture = try WharfHomeFixture()
        let result = try fixture.wharf("init", "--server-name", "not a host")
        #expect(result.status != 0)
        #expect(result.stderr.contains("not a host name or IP address"))
        #expect(!FileManager.default.fileExists(atPath: fixture.home))
    }

    @Test func commandsOnAHomeThatWasNeverInitialisedSaySo() throws {
        let fixture = try WharfHomeFixture()
        try FileManager.default.createDirectory(atPath: fixture.home, withIntermediateDirectories: true)
        for arguments in [["partner", "list"], ["partner", "add", "acme"], ["ca", "show"]] {
            let result = try fixture.wharf(arguments)
            #expect(result.status != 0)
            #expect(result.stderr.contains("wharf init"), "\(arguments): \(result.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.home).isEmpty)
        }
    }
}
