import Foundation
import WharfCore
import Yams

/// The home's `wharf.yml`: settings of `serve` and `deliver` by their long option names,
/// one level deep (`retry-initial: 30`). Read with Yams; every key must be a known setting
/// and every value a single scalar, or the command stops naming the file, the line and the
/// key.
struct ConfigurationFile: Sendable {
    static let name = "wharf.yml"

    let path: String
    let values: [String: String]

    /// The file of `home`, or `nil` when it has none.
    static func load(home: WharfHome) throws(WharfError) -> ConfigurationFile? {
        let path = "\(home.path)/\(name)"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw WharfError(.unreadableFile, "cannot read \(path): \(error.localizedDescription)", fix: "check its owner and permissions")
        }
        return try parse(text, path: path)
    }

    static func parse(_ text: String, path: String) throws(WharfError) -> ConfigurationFile {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw .invalid("\(path) is not valid YAML: \(Self.oneLine(error))", fix: "write one `key: value` per line")
        }
        guard let root else { return ConfigurationFile(path: path, values: [:]) }
        guard case .mapping(let mapping) = root else {
            throw .invalid("\(path) must be a mapping of settings", fix: "write one `key: value` per line, such as `listen: 0.0.0.0:8443`")
        }
        var values: [String: String] = [:]
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark.map { " (line \($0.line))" } ?? ""
            guard case .scalar(let key) = keyNode, let setting = Setting.named(key.string) else {
                let shown = keyNode.scalar.map { "'\($0.string)'" } ?? "a key that is not a name"
                throw .invalid(
                    "\(path)\(line): unknown key \(shown)",
                    fix: "the keys are \(Setting.all.map(\.key).joined(separator: ", "))"
                )
            }
            guard case .scalar(let value) = valueNode else {
                throw .invalid("\(path)\(line): \(setting.key) must be a single value, not a list or a mapping", fix: "give \(setting.allowed)")
            }
            values[setting.key] = value.string
        }
        return ConfigurationFile(path: path, values: values)
    }

    /// Yams' message in one line: its first, and where in the file, if it says.
    private static func oneLine(_ error: any Error) -> String {
        let text = "\(error)"
        var first = String(text.prefix { $0 != "\n" })
        if first.hasSuffix(".") { first.removeLast() }
        if !first.contains("line "), let place = text.firstMatch(of: /line (\d+), column (\d+)/) {
            first += " (line \(place.1), column \(place.2))"
        }
        return first
    }

    /// What `wharf init` writes: every setting, commented out at its default, but the
    /// database and its password file when given.
    static func template(database: String? = nil, passwordFile: String? = nil) -> String {
        let given = ["database-url": database, "database-password-file": passwordFile].compactMapValues { $0 }
        var lines = [
            "# Wharf's settings for `wharf serve` and `wharf deliver`. A setting here is overridden by",
            "# the environment (WHARF_LISTEN=...) and by a flag (--listen ...). `wharf config show`",
            "# prints what is in effect and where each value came from.",
        ]
        for setting in Setting.all {
            lines.append("")
            lines.append("# \(setting.help)\(setting.scope == .serve ? " (serve)" : "")")
            if let value = given[setting.key] {
                lines.append("\(setting.key): '\(value.replacingOccurrences(of: "'", with: "''"))'")
            } else {
                lines.append("# \(setting.key): \(setting.defaultValue)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
