import NIOConcurrencyHelpers
import WharfCore

/// Runs deliveries through one `CurlMulti` (one thread, one connection cache), keeping
/// idle easy handles per partner for reuse.
public final class DeliveryClient: Sendable {
    private let idle = NIOLockedValueBox<[String: [CurlEasy]]>([:])
    private let multi: CurlMulti?

    public init() {
        multi = try? CurlMulti()
    }

    deinit {
        multi?.shutdown()
    }

    /// Delivers, suspending until the exchange ends.
    public func deliver(_ request: DeliveryRequest, partner: String) async -> DeliveryResult {
        guard let multi else { return DeliveryResult(curlCode: 2, curlError: "libcurl could not start", httpStatus: nil) }
        let handle: CurlEasy
        if let reused = idle.withLockedValue({ $0[partner]?.popLast() }) {
            handle = reused
        } else {
            do {
                handle = try CurlEasy()
            } catch {
                return DeliveryResult(curlCode: 2, curlError: error.description, httpStatus: nil)
            }
        }
        let result = await CurlDelivery.put(request, using: handle, on: multi)
        idle.withLockedValue { $0[partner, default: []].append(handle) }
        return result
    }

    /// Drops the idle handles (and their connections) of every partner.
    public func closeIdleConnections() {
        idle.withLockedValue { $0.removeAll() }
    }
}
