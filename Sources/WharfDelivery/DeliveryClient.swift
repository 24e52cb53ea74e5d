import NIOConcurrencyHelpers
import WharfCore

/// Runs deliveries through one `CurlMulti` (one thread, one connection cache), keeping
/// idle easy handles per partner for reuse. libcurl is loaded, and the multi handle and its
/// thread made, by the first delivery.
public final class DeliveryClient: Sendable {
    private let idle = NIOLockedValueBox<[String: [CurlEasy]]>([:])
    private let started = NIOLockedValueBox<Result<CurlMulti, WharfError>?>(nil)
    private let receivers = ReceiverCertificates()

    public init() {}

    deinit {
        if case .success(let multi) = started.withLockedValue({ $0 }) { multi.shutdown() }
    }

    /// Delivers, suspending until the exchange ends.
    public func deliver(_ request: DeliveryRequest, partner: String) async -> DeliveryResult {
        let multi: CurlMulti
        switch started.withLockedValue({ started in
            if started == nil { started = Result { () throws(WharfError) in try CurlMulti() } }
            return started!
        }) {
        case .success(let running): multi = running
        case .failure(let error): return .notSent(error.description)
        }
        let handle: CurlEasy
        if let reused = idle.withLockedValue({ $0[partner]?.popLast() }) {
            handle = reused
        } else {
            do {
                handle = try CurlEasy()
            } catch {
                return .notSent(error.description)
            }
        }
        var (result, certificate) = await CurlDelivery.put(request, using: handle, on: multi)
        idle.withLockedValue { $0[partner, default: []].append(handle) }
        let server = ReceiverCertificates.server(of: request.url)
        if let certificate { receivers.record(certificate, for: server) }
        if let signature = result.receiptSignature, let status = result.httpStatus, (200..<300).contains(status) {
            result.signatureProblem = receivers.problem(with: signature, of: result.body, from: server)
        }
        return result
    }
}
