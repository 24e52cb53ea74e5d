import Foundation
import Testing
import WharfTestSupport

/// `wharf.yml`, the environment and flags: precedence, `config show`, and a clear stop on
/// anything wrong.
@Suite struct ConfigurationTests {
    struct Shown: Decodable {
        struct Value: Decodable {
            let key: String
            let value: String
            let source: String
            let origin: String
        }
        let file: String?
        let settings: [Value]

        subscript(_ key: String) -> Value? { settings.first { $0.key == key } }
    }

    static func home(settings: String?) throws -> WharfHomeFixture {
        let fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        if let settings { try settings.write(toFile: "\(fixture.home)/wharf.yml", atomically: true, encoding: .utf8) }
        return fixture
    }

    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheFileWhichWinsOverTheDefault() throws {
        let fixture = try Self.home(settings: "retry-initial: 5\nlog-level: debug\nmax-attempts: 9\n")
        let result = try fixture.wharf(
            ["config", "show", "--json", "--max-attempts", "3"], environment: ["WHARF_LOG_LEVEL": "warning"]
        )
        #expect(result.succeeded, "\(result.stderr)")
        let shown = try JSONDecoder().decode(Shown.self, from: Data(result.stdout.utf8))
        #expect(shown.file == "\(fixture.home)/wharf.yml")
        #expect(shown["retry-initial"]?.value == "5")
        #expect(shown["retry-initial"]?.source == "file")
        #expect(shown["log-level"]?.value == "warning")
        #expect(shown["log-level"]?.source == "environment")
        #expect(shown["log-level"]?.origin == "WHARF_LOG_LEVEL")
        #expect(shown["max-attempts"]?.value == "3")
        #expect(shown["max-attempts"]?.source == "flag")
        #expect(shown["listen"]?.value == "0.0.0.0:8443")
        #expect(shown["listen"]?.source == "default")
        // Every option of serve is a setting.
        for key in ["listen", "admin-listen", "min-free-space", "handshake-timeout", "head-timeout", "body-timeout", "partial-upload-max-age",
                    "retry-initial", "retry-maximum", "max-attempts", "max-age", "max-deliveries-per-partner",
                    "keep-sent-days", "log-level", "log-format", "send-ca-names", "max-connections-per-address", "max-connections", "min-body-rate"] {
            #expect(shown[key] != nil, "\(key)")
        }

        let text = try fixture.wharf(["config", "show"], environment: ["WHARF_LOG_LEVEL": "warning"])
        #expect(text.stdout.contains("log-level"))
        #expect(text.stdout.contains("environment (WHARF_LOG_LEVEL)"))
    }

    @Test func serveRunsWithTheFilesSettings() async throws {
        let fixture = try Self.home(settings: "listen: 127.0.0.1:0\nadmin-listen: off\nlog-format: json\n")
        let server = try BackgroundProcess(WharfHomeFixture.binary, ["serve", "--home", fixture.home])
        let output = try await server.waitForOutput { $0.contains("Listening on") }
        #expect(output.contains("Listening on 127.0.0.1:"))
        #expect(!output.contains("Admin listening"))
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        // JSON log lines, as the file asked.
        #expect(server.stderr.split(separator: "\n").contains { $0.hasPrefix("{") && $0.contains(#""message":"listening""#) })
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        let label: String
        let file: String?
        var environment: [String: String] = [:]
        var flags: [String] = []
        let says: [String]
        /// A setting of `serve` alone: `deliver` does not read it.
        var serveOnly = false
        var testDescription: String { label }
    }

    @Test(arguments: [
        Bad(label: "unknown key", file: "listen: 127.0.0.1:0\nretyr-initial: 5\n",
            says: ["wharf.yml (line 2): unknown key 'retyr-initial'", "the keys are listen, admin-listen"]),
        Bad(label: "a list where one value belongs", file: "listen: [127.0.0.1:1, 127.0.0.1:2]\n",
            says: ["wharf.yml (line 1): listen must be a single value", "HOST:PORT"]),
        Bad(label: "a bad value in the file", file: "max-attempts: 0\n",
            says: ["wharf.yml: max-attempts: '0' is not allowed", "a whole number of 1 or more"]),
        Bad(label: "a bad value in the environment", file: nil, environment: ["WHARF_RETRY_MAXIMUM": "soon"],
            says: ["WHARF_RETRY_MAXIMUM: 'soon' is not allowed", "a number of seconds of 0 or more"]),
        Bad(label: "a bad flag", file: nil, flags: ["--log-level", "loud"],
            says: ["--log-level: 'loud' is not allowed", "trace, debug, info, notice, warning or error"]),
        Bad(label: "an allow list with a bad block", file: nil, flags: ["--defender-allow", "10.0.0.0/8,192.0.2.0/33"],
            says: ["--defender-allow: '10.0.0.0/8,192.0.2.0/33' is not allowed", "none, or addresses and CIDR blocks"]),
        Bad(label: "a defender neither on nor off", file: "defender: maybe\n", says: ["wharf.yml: defender: 'maybe' is not allowed", "on or off"], serveOnly: true),
        Bad(label: "no audit retention", file: "audit-retention-days: 0\n", says: ["wharf.yml: audit-retention-days: '0' is not allowed", "1 or more"], serveOnly: true),
        Bad(label: "not YAML", file: "listen: [unclosed\n", says: ["wharf.yml is not valid YAML", "while parsing a flow sequence in line 1, column 9"]),
        Bad(label: "not a mapping", file: "- listen\n", says: ["wharf.yml must be a mapping of settings"]),
        Bad(label: "a key twice", file: "listen: 127.0.0.1:0\nlisten: 127.0.0.1:1\n",
            says: ["wharf.yml is not valid YAML", "duplicated key(s): 'listen'"]),
    ])
    func serveStopsWithOneLineNamingWhereAndWhatIsAllowed(_ bad: Bad) throws {
        let fixture = try Self.home(settings: bad.file)
        let before = try fixture.snapshot()
        let result = try fixture.wharf(["serve"] + bad.flags, environment: bad.environment)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line: \(result.stderr)")
        for phrase in bad.says {
            #expect(result.stderr.contains(phrase), "\(phrase) in: \(result.stderr)")
        }
        #expect(!result.stdout.contains("Listening on"))
        // It stopped before touching the home (no lock file, no recovery).
        #expect(try fixture.snapshot() == before)
        // deliver reads the same file and stops alike.
        if bad.serveOnly { return }
        #expect(try fixture.wharf(["deliver", "--once"] + bad.flags, environment: bad.environment).status != 0)
    }

    @Test func initWritesEverySettingCommentedOutAtItsDefault() throws {
        let fixture = try Self.home(settings: nil)
        let template = try String(contentsOfFile: "\(fixture.home)/wharf.yml", encoding: .utf8)
        let shownBefore = try JSONDecoder().decode(Shown.self, from: Data(try fixture.succeed("config", "show", "--json").stdout.utf8))
        #expect(shownBefore.settings.allSatisfy { $0.source == "default" })
        // Uncommented, it is a valid file that changes nothing but where the values come from.
        let uncommented = template.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.wholeMatch(of: /# [a-z-]+: .*/) != nil ? String(line.dropFirst(2)) : String(line)
        }.joined(separator: "\n")
        try uncommented.write(toFile: "\(fixture.home)/wharf.yml", atomically: true, encoding: .utf8)
        let shown = try JSONDecoder().decode(Shown.self, from: Data(try fixture.succeed("config", "show", "--json").stdout.utf8))
        #expect(shown.settings.allSatisfy { $0.source == "file" }, "\(shown.settings.filter { $0.source != "file" }.map(\.key))")
        #expect(shown.settings.map(\.value) == shownBefore.settings.map(\.value))
    }
}
