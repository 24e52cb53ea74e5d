import NIOConcurrencyHelpers
import NIOCore

/// Caps the connections open at once, per client address and overall. A connection over
/// either cap is closed as it is accepted, before any TLS: one client cannot hold every
/// file descriptor or every handshake's CPU.
final class ConnectionLimiter: Sendable {
    private struct Counts {
        var total = 0
        var byAddress: [String: Int] = [:]
    }

    private let perAddress: Int
    private let overall: Int
    private let counts = NIOLockedValueBox(Counts())

    init(perAddress: Int, overall: Int) {
        self.perAddress = perAddress
        self.overall = overall
    }

    enum Refusal: Error, CustomStringConvertible {
        case perAddress(Int), overall(Int)

        /// The metrics' label: `per_address` or `overall`.
        var label: String {
            switch self {
            case .perAddress: "per_address"
            case .overall: "overall"
            }
        }

        var description: String {
            switch self {
            case .perAddress(let limit): "this address already has \(limit) connections open (--max-connections-per-address)"
            case .overall(let limit): "the gateway already has \(limit) connections open (--max-connections)"
            }
        }
    }

    /// Counts `channel` in, and out again when it closes; or refuses it.
    func admit(_ channel: any Channel) throws(Refusal) {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let refusal = counts.withLockedValue { counts -> Refusal? in
            guard counts.total < overall else { return .overall(overall) }
            guard counts.byAddress[address, default: 0] < perAddress else { return .perAddress(perAddress) }
            counts.total += 1
            counts.byAddress[address, default: 0] += 1
            return nil
        }
        if let refusal { throw refusal }
        channel.closeFuture.whenComplete { [counts] _ in
            counts.withLockedValue { counts in
                counts.total -= 1
                let left = counts.byAddress[address, default: 1] - 1
                counts.byAddress[address] = left > 0 ? left : nil
            }
        }
    }
}
