import Foundation

/// Names the server certificate covers and partners connect to.
enum HostNames {
    /// This machine's host name, as `hostname` prints it.
    static var local: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return nil }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? nil : name
    }

    /// The operator's names first (the first one is the name partners are told to use),
    /// then localhost, the host name and the loopback addresses, without repeats.
    static func serverCertificateNames(extra: [String]) -> [String] {
        var names: [String] = []
        for name in extra + ["localhost", local, "127.0.0.1", "::1"].compactMap({ $0 })
        where !names.contains(name.lowercased()) {
            names.append(name.lowercased())
        }
        return names
    }
}
