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
        let server = ReceiverCertificates.server(of: request.url)
        var sending = CurlDelivery.Sending.whole
        if let location = request.uploadLocation, ReceiverCertificates.server(of: location) == server {
            let (held, certificate) = await CurlDelivery.heldUpload(at: location, for: request, using: handle, on: multi)
            if let certificate { receivers.record(certificate, for: server) }
            if case .resumable(let offset) = held { sending = .rest(location: location, offset: offset) }
        }
        var (result, certificate) = await CurlDelivery.put(request, using: handle, on: multi, sending: sending)
        if let certificate { receivers.record(certificate, for: server) }
        if case .rest = sending, let status = result.httpStatus, (400..<500).contains(status), status != 413 {
            // The receiver no longer holds the upload as it said (completed meanwhile, or
            // removed): the whole file, with the same Idempotency-Key, gets its receipt.
            (result, certificate) = await CurlDelivery.put(request, using: handle, on: multi)
            if let certificate { receivers.record(certificate, for: server) }
        }
        idle.withLockedValue { $0[partner, default: []].append(handle) }
        if let signature = result.receiptSignature, let status = result.httpStatus, (200..<300).contains(status) {
            result.signatureProblem = receivers.problem(with: signature, of: result.body, from: server)
        }
        return result
    }
}
