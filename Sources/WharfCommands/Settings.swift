import Foundation
import Logging
import WharfCore
import WharfPostgres

/// One setting of `wharf serve` and `wharf deliver`. Its name is the long option
/// (`--retry-initial`), the key in the home's `wharf.yml` (`retry-initial: 30`) and, in
/// upper case with underscores after `WHARF_`, the environment variable
/// (`WHARF_RETRY_INITIAL=30`).
struct Setting: Sendable {
    enum Scope: Sendable {
        /// `serve` only: the listeners.
        case serve
        /// `serve` and `deliver --once`: delivery and logging.
        case gateway
    }

    let key: String
    let defaultValue: String
    let scope: Scope
    let help: String
    /// What values it takes, in words: the end of the error a bad value gets.
    let allowed: String
    let accepts: @Sendable (String) -> Bool
    /// How a value is printed (`config show`, errors): a database URL without its password.
    var shown: @Sendable (String) -> String = { $0 }

    var option: String { "--\(key)" }
    var environmentVariable: String { "WHARF_" + key.uppercased().replacingOccurrences(of: "-", with: "_") }
}

extension Setting {
    static let all: [Setting] = [
        Setting(
            key: "listen", defaultValue: "0.0.0.0:8443", scope: .serve,
            help: "Address and port of the mutual-TLS listener; port 0 picks a free one.",
            allowed: "HOST:PORT, such as 0.0.0.0:8443, [::]:8443 or 127.0.0.1:0", accepts: { (try? Serve.parseListen($0)) != nil }
        ),
        Setting(
            key: "admin-listen", defaultValue: "127.0.0.1:9464", scope: .serve,
            help: "Address and port of the admin listener (plain HTTP: /metrics, /healthz, /readyz), or off.",
            allowed: "HOST:PORT, such as 127.0.0.1:9464, or off",
            accepts: { $0.lowercased() == "off" || (try? Serve.parseListen($0)) != nil }
        ),
        Setting(
            key: "min-free-space", defaultValue: "256MiB", scope: .serve,
            help: "Free space on the spool below which /readyz answers 503.",
            allowed: "a size, such as 512MiB, 2GiB or 0", accepts: { $0 == "0" || (try? ByteSize.parse($0)) != nil }
        ),
        Setting(
            key: "send-ca-names", defaultValue: "false", scope: .serve,
            help: "Name the accepted CAs in the TLS certificate request (tells every client which partners' CAs are trusted).",
            allowed: "true or false", accepts: { $0 == "true" || $0 == "false" }
        ),
        Setting(
            key: "min-body-rate", defaultValue: "1KiB", scope: .serve,
            help: "Bytes per second an upload's body must average over each minute, or it is cut off; 0 for no minimum.",
            allowed: "a size per second, such as 1KiB or 0", accepts: { $0 == "0" || (try? ByteSize.parse($0)) != nil }
        ),
        Setting(
            key: "max-connections-per-address", defaultValue: "64", scope: .serve,
            help: "Connections one client address may hold open at once; more are closed as they arrive.",
            allowed: "a whole number of 1 or more", accepts: { (Int($0) ?? 0) >= 1 }
        ),
        Setting(
            key: "max-connections", defaultValue: "4096", scope: .serve,
            help: "Connections open at once, all clients together; more are closed as they arrive.",
            allowed: "a whole number of 1 or more", accepts: { (Int($0) ?? 0) >= 1 }
        ),
        Setting(
            key: "defender", defaultValue: "on", scope: .serve,
            help: "Ban an address for 30 minutes (longer when it comes back) once its refused handshakes, certificates of no partner and limit hits score 15 points in 30 minutes.",
            allowed: "on or off", accepts: { $0 == "on" || $0 == "off" }
        ),
        Setting(
            key: "defender-allow", defaultValue: "none", scope: .serve,
            help: "Addresses the defender never bans: comma-separated addresses or CIDR blocks (a load balancer, a monitoring host), or none.",
            allowed: "none, or addresses and CIDR blocks such as 10.0.0.0/8,192.0.2.7",
            accepts: { $0 == "none" || (try? AddressRange.list($0)).map { !$0.isEmpty } == true }
        ),
        Setting(
            key: "audit-retention-days", defaultValue: "400", scope: .serve,
            help: "Days audit events are kept; older ones are removed once a day, and the chain still verifies from the first one kept.",
            allowed: "a whole number of days of 1 or more", accepts: { (Int($0) ?? 0) >= 1 }
        ),
        seconds("handshake-timeout", 10, .serve, "Seconds a client may take to finish the TLS handshake.", minimum: 1),
        seconds("head-timeout", 30, .serve, "Seconds a connection may wait before sending a complete request head.", minimum: 1),
        seconds("body-timeout", 60, .serve, "Seconds an upload may go without body progress.", minimum: 1),
        seconds(
            "partial-upload-max-age", 86_400, .serve,
            "Seconds a resumable upload may go untouched before it is removed with its bytes (24 h).", minimum: 1
        ),
        seconds("retry-initial", 30, .gateway, "Upper bound of the first retry's wait, in seconds; doubles per attempt.", fractions: true),
        seconds("retry-maximum", 1800, .gateway, "The longest wait between attempts, in seconds.", fractions: true),
        count("max-attempts", 20, "Attempts before a transfer dies."),
        seconds("max-age", 259_200, .gateway, "Age in seconds after which a transfer dies (72 h).", fractions: true),
        count("max-deliveries-per-partner", 4, "Deliveries at once to one partner."),
        Setting(
            key: "keep-sent-days", defaultValue: "7", scope: .gateway, help: "Days delivered files stay in spool/sent/.",
            allowed: "a number of days of 0 or more, such as 7 or 0.5", accepts: { Double($0).map { $0 >= 0 && $0.isFinite } ?? false }
        ),
        Setting(
            key: "database-url", defaultValue: "embedded", scope: .gateway,
            help: "The registry: embedded (SQLite in the home), or postgresql://USER@HOST:PORT/DB?sslmode=disable|require|verify-full, shared by every node of the home.",
            allowed: "embedded, or a postgresql:// URL such as postgresql://wharf@db.example:5432/wharf",
            accepts: { $0 == "embedded" || (try? PostgresLocation(url: $0, environment: [:])) != nil },
            shown: { PostgresLocation.redacted($0) }
        ),
        Setting(
            key: "database-password-file", defaultValue: "none", scope: .gateway,
            help: "A file whose first line is the PostgreSQL password (else the URL's, else PGPASSWORD), or none.",
            allowed: "a file's path, or none", accepts: { !$0.isEmpty }
        ),
        Setting(
            key: "node-name", defaultValue: "generated", scope: .gateway,
            help: "This node's name in a gateway of several (its claims, heartbeat and spool/tmp/NODE/); generated is the host name and a random suffix.",
            allowed: "generated, or 1 to 63 letters, digits, dots, dashes and underscores",
            accepts: { $0 == "generated" || (try? NodeName($0)) != nil }
        ),
        seconds(
            "claim-lease", 60, .gateway,
            "Seconds a node's claim on a transfer holds unless renewed (a third of the way in): how long a dead node's transfers wait before another sends them.",
            minimum: 3
        ),
        Setting(
            key: "log-level", defaultValue: "info", scope: .gateway,
            help: "The least severe level logged: trace, debug, info, notice, warning or error.",
            allowed: "trace, debug, info, notice, warning or error",
            accepts: { ["trace", "debug", "info", "notice", "warning", "error"].contains($0) }
        ),
        Setting(
            key: "log-format", defaultValue: "text", scope: .gateway, help: "How log lines are written: text, or json (one object per line).",
            allowed: "text or json", accepts: { LogFormat(rawValue: $0) != nil }
        ),
    ]

    static func named(_ key: String) -> Setting? { all.first { $0.key == key } }

    private static func seconds(
        _ key: String, _ value: Int, _ scope: Scope, _ help: String, minimum: Double = 0, fractions: Bool = false
    ) -> Setting {
        let allowed = fractions
            ? "a number of seconds of \(Int(minimum)) or more, such as 30 or 0.5"
            : "a whole number of seconds of \(Int(minimum)) or more"
        return Setting(key: key, defaultValue: "\(value)", scope: scope, help: help, allowed: allowed) { text in
            guard let number = fractions ? Double(text) : Int(text).map(Double.init) else { return false }
            return number >= minimum && number.isFinite
        }
    }

    private static func count(_ key: String, _ value: Int, _ help: String) -> Setting {
        Setting(key: key, defaultValue: "\(value)", scope: .gateway, help: help, allowed: "a whole number of 1 or more") { text in
            (Int(text) ?? 0) >= 1
        }
    }
}

/// The settings a command runs with, each with where it came from: a flag, else the
/// environment, else the home's `wharf.yml`, else the default.
struct EffectiveSettings: Sendable {
    enum Source: String, Sendable, Encodable {
        case flag, environment, file, `default`
    }

    struct Value: Sendable, Encodable {
        let key: String
        let value: String
        let source: Source
        /// The flag, the variable or the file the value came from; `default` for a default.
        let origin: String
    }

    let values: [Value]

    /// Resolves every setting of `scope` (`.serve` includes the gateway's).
    ///
    /// - Throws: `invalid_input` naming the flag, variable or file and key of the first
    ///   value that is not allowed, and what is; an unknown key or a malformed file.
    static func resolve(
        for scope: Setting.Scope, flags: [String: String], environment: [String: String], file: ConfigurationFile?
    ) throws(WharfError) -> EffectiveSettings {
        var values: [Value] = []
        for setting in Setting.all where scope == .serve || setting.scope == .gateway {
            let value: Value
            if let flag = flags[setting.key] {
                value = Value(key: setting.key, value: flag, source: .flag, origin: setting.option)
            } else if let variable = environment[setting.environmentVariable] {
                value = Value(key: setting.key, value: variable, source: .environment, origin: setting.environmentVariable)
            } else if let file, let text = file.values[setting.key] {
                value = Value(key: setting.key, value: text, source: .file, origin: file.path)
            } else {
                value = Value(key: setting.key, value: setting.defaultValue, source: .default, origin: "default")
            }
            guard setting.accepts(value.value) else {
                let place = value.source == .file ? "\(value.origin): \(setting.key)" : value.origin
                throw .invalid(
                    "\(place): '\(setting.shown(value.value))' is not allowed", fix: "give \(setting.allowed)"
                )
            }
            values.append(value)
        }
        return EffectiveSettings(values: values)
    }

    /// The values as they may be printed: a database URL's password left out.
    var shownValues: [Value] {
        values.map { value in
            Value(key: value.key, value: Setting.named(value.key)?.shown(value.value) ?? value.value, source: value.source, origin: value.origin)
        }
    }

    subscript(_ key: String) -> String {
        guard let value = values.first(where: { $0.key == key }) else { preconditionFailure("no setting \(key)") }
        return value.value
    }

    func double(_ key: String) -> Double { Double(self[key])! }
    func int(_ key: String) -> Int { Int(self[key])! }
    func seconds(_ key: String) -> Int64 { Int64(self[key])! }
    func size(_ key: String) -> Int64 { (try? ByteSize.parse(self[key])) ?? 0 }

    /// This node's name: `node-name`, or one generated for this run.
    var nodeName: NodeName {
        self["node-name"] == "generated" ? .generated() : ((try? NodeName(self["node-name"])) ?? .generated())
    }

    var logLevel: Logger.Level { Logger.Level(rawValue: self["log-level"]) ?? .info }
    var logFormat: LogFormat { LogFormat(rawValue: self["log-format"]) ?? .text }
}
