#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Foundation
import Logging
import Synchronization
import WharfCore

/// How log lines are written.
enum LogFormat: String, CaseIterable, Sendable {
    /// `TIMESTAMP LEVEL message key=value …`, values escaped for a terminal.
    case text
    /// One JSON object per line: `timestamp` (RFC 3339, UTC), `level`, `message`, and each
    /// metadata key as a field of its own.
    case json
}


/// `--log-level` and `--log-format`, for the commands that run a gateway (also settable in
/// the environment and in `wharf.yml`).
struct LogOptions: ParsableArguments {
    @Option(help: .setting("log-level", valueName: "level")) var logLevel: String?
    @Option(help: .setting("log-format", valueName: "format")) var logFormat: String?

    var flags: [String: String] {
        ["log-level": logLevel, "log-format": logFormat].compactMapValues { $0 }
    }

    /// Sends every logger of this process to stderr in the level and format of `settings`.
    /// Once per process, before the first logger is made.
    static func bootstrap(_ settings: EffectiveSettings) {
        let (level, format) = (settings.logLevel, settings.logFormat)
        LoggingSystem.bootstrap { label in WharfLogHandler(label: label, level: level, format: format) }
    }
}

/// Writes log lines to stderr, one `write` each, so that lines of concurrent tasks never mix.
/// Metadata values are escaped (text) or JSON-encoded (json): text from outside cannot
/// forge a line.
struct WharfLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level, format: LogFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let given = event.metadata { merged.merge(given) { _, new in new } }
        let line = Self.line(
            at: Date.now.utcTimestamp(milliseconds: true), level: event.level, message: "\(event.message)",
            metadata: merged, format: format
        )
        Self.write(line)
    }

    /// One log line, without its newline.
    static func line(at timestamp: String, level: Logger.Level, message: String, metadata: Logger.Metadata, format: LogFormat) -> String {
        let fields = metadata.sorted { $0.key < $1.key }
        switch format {
        case .text:
            var line = "\(timestamp) \(level.rawValue) \(EscapedText.terminal(message))"
            for (key, value) in fields { line += " \(key)=\(text(value))" }
            return line
        case .json:
            var line = "{\"timestamp\":\"\(timestamp)\",\"level\":\"\(level.rawValue)\",\"message\":\(EscapedText.json(message))"
            for (key, value) in fields where !["timestamp", "level", "message"].contains(key) {
                line += ",\(EscapedText.json(key)):\(json(value))"
            }
            return line + "}"
        }
    }

    /// A value in a text line: as it is when it is plain, else quoted and escaped.
    private static func text(_ value: Logger.Metadata.Value) -> String {
        let plain: String = switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(text).joined(separator: ",")
        case .dictionary(let values): values.sorted { $0.key < $1.key }.map { "\($0.key):\(text($0.value))" }.joined(separator: ",")
        }
        let escaped = EscapedText.terminal(plain)
        let needsQuotes = escaped.isEmpty || escaped.contains { $0 == " " || $0 == "\"" || $0 == "=" }
        return needsQuotes ? "\"" + escaped.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : escaped
    }

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): EscapedText.json(string)
        case .stringConvertible(let convertible): EscapedText.json(convertible.description)
        case .array(let values): "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let values):
            "{" + values.sorted { $0.key < $1.key }.map { "\(EscapedText.json($0.key)):\(json($0.value))" }.joined(separator: ",") + "}"
        }
    }

    private static let output = Mutex(())

    private static func write(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        output.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress! + offset, bytes.count - offset) }
                if written <= 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }
}
