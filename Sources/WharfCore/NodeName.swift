import Foundation

/// A gateway node's name: what it signs its claims and heartbeat with in a shared
/// registry, and the directory it stages uploads in (`spool/tmp/NODE/`), so no node
/// cleans up another live node's files. 1 to 63 letters, digits, dots, dashes and
/// underscores, starting with a letter or digit.
public struct NodeName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(WharfError) {
        let bytes = Array(rawValue.utf8)
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        guard let first = bytes.first, bytes.count <= 63, isAlphanumeric(first),
              bytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") })
        else {
            throw .invalid(
                "\(EscapedText.json(rawValue)) is not a valid node name",
                fix: "use 1 to 63 letters, digits, dots, dashes and underscores, starting with a letter or digit (for example 'gw1')"
            )
        }
        self.rawValue = rawValue
    }

    /// This host's name (up to its first dot) and a short random suffix: two nodes started
    /// on one host get two names. Give `--node-name` for a name that stays across restarts.
    public static func generated(hostName: String = ProcessInfo.processInfo.hostName, suffix: UInt16 = .random(in: 0...UInt16.max)) -> NodeName {
        let host = String(hostName.prefix(while: { $0 != "." }).filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }.prefix(50))
        let hex = String(suffix, radix: 16)
        let suffixText = String(repeating: "0", count: 4 - hex.count) + hex
        // Falls back to "node" for a host name with nothing usable in it.
        return (try? NodeName("\(host.isEmpty ? "node" : host)-\(suffixText)")) ?? (try! NodeName("node-\(suffixText)"))
    }

    public var description: String { rawValue }
}
