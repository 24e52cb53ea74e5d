#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A block of IP addresses written as CIDR (`10.0.0.0/8`, `2001:db8::/32`) or one address
/// (`192.0.2.7`, a `/32` or `/128`). An IPv4 address seen as IPv4-mapped IPv6
/// (`::ffff:192.0.2.7`, as a dual-stack listener reports it) is matched as IPv4.
public struct AddressRange: Sendable, Hashable, CustomStringConvertible {
    /// The network's bytes (4 or 16), host bits cleared.
    let network: [UInt8]
    public let prefixLength: Int

    public init(_ text: String) throws(WharfError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.bytes(of: String(parts[0])) else {
            throw .invalid("'\(EscapedText.terminal(text))' is not an IP address or CIDR block", fix: "write an address such as 192.0.2.7, or a block such as 10.0.0.0/8 or 2001:db8::/32")
        }
        let bits = address.count * 8
        var length = bits
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...bits).contains(value), parts[1].allSatisfy(\.isASCII) else {
                throw .invalid("'\(EscapedText.terminal(text))' has a prefix length that is not 0 to \(bits)", fix: "write a block such as 10.0.0.0/8")
            }
            length = value
        }
        self.prefixLength = length
        self.network = Self.masked(address, to: length)
    }

    /// Every range of a comma-separated list (`10.0.0.0/8, 192.0.2.7`); an empty list is none.
    public static func list(_ text: String) throws(WharfError) -> [AddressRange] {
        var ranges: [AddressRange] = []
        for item in text.split(separator: ",") {
            let trimmed = item.trimmingSpaces
            if trimmed.isEmpty { continue }
            ranges.append(try AddressRange(trimmed))
        }
        return ranges
    }

    /// Whether `text` is one IPv4 or IPv6 address.
    public static func isAddress(_ text: String) -> Bool {
        bytes(of: text) != nil
    }

    /// Whether `address` (as a socket reports it, without a port) is in the range.
    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(of: address), bytes.count == network.count else { return false }
        return Self.masked(bytes, to: prefixLength) == network
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = network.count == 4 ? AF_INET : AF_INET6
        let text = network.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        } ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        return "\(text)/\(prefixLength)"
    }

    /// The address's bytes: 4 for IPv4 (also when IPv4-mapped), 16 for IPv6; `nil` if it is
    /// neither.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return Array(bytes[12...])
        }
        return bytes
    }

    private static func masked(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let kept = max(0, min(8, length - index * 8))
            return kept == 8 ? byte : byte & ~(0xFF >> UInt8(kept))
        }
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
