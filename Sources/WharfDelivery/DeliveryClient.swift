import NIOConcurrencyHelpers
import WharfCore

/// Runs deliveries, keeping idle curl handles per partner so that connections (and TLS
/// sessions) are reused from one delivery to the next.
public final class DeliveryClient: Sendable {
    private let idle = NIOLockedValueBox<[String: [HandleBox]]>([:])

    public init() {}

    /// Delivers on the calling thread, which it blocks until the exchange ends.
    public func deliver(_ request: DeliveryRequest, partner: String) -> DeliveryResult {
        let box: HandleBox
        if let reused = idle.withLockedValue({ $0[partner]?.popLast() }) {
            box = reused
        } else {
            do {
                box = HandleBox(try CurlEasy())
            } catch {
                return DeliveryResult(curlCode: 2, curlError: error.description, httpStatus: nil)
            }
        }
        let result = CurlDelivery.put(request, using: box.handle)
        idle.withLockedValue { $0[partner, default: []].append(box) }
        return result
    }

    /// Drops the idle handles (and their connections) of every partner.
    public func closeIdleConnections() {
        idle.withLockedValue { $0.removeAll() }
    }
}

/// A curl handle passed between threads, one at a time: taken out of the idle list by the
/// thread that uses it and put back when done.
private final class HandleBox: @unchecked Sendable {
    let handle: CurlEasy

    init(_ handle: CurlEasy) {
        self.handle = handle
    }
}
