import Foundation
import WharfCore
import WharfSpool

/// Decides one request to the inbox, from its head to its answer, without any I/O.
///
/// The inbox handler (`InboxConnection`) feeds it what happened (the head arrived, the
/// partner was decided, a body chunk came, the body ended, the digest is known, the commit
/// ended, the client went away or the request broke off) and carries out the action it
/// returns (refuse, list, receive the body, write a chunk, settle, commit, reply, abandon).
/// Everything an upload's outcome depends on lives here, and for resumable uploads past
/// their creation in `ResumableUpload` (which this routes to: `/uploads/{id}`, `OPTIONS`,
/// and a `Reception` marked resumable when the request carries `Upload-Complete`):
///
/// - **Precedence of refusals:** a certificate that maps to no active partner gets `403`
///   before anything else; then the route (`404`, `405`, `400 bad_filename`, `400
///   bad_query`, `409 not_a_pull_partner` for the outbox of a push partner); then, for
///   uploads, `411` (no length), `413` (a declared length over the partner's limit, before a
///   byte of body is read), `400 bad_header` (a malformed `Content-Digest`, `Repr-Digest`
///   or `Idempotency-Key`), then for a resumable creation `400 inconsistent_length` and
///   `413` for a stated length over the limit (with `Upload-Limit`); while the body arrives, `413` as soon as it passes the limit; after
///   it, `400 digest_mismatch`; at the commit, the partners as they are then (`403` if the
///   certificate maps to none any more, `409 partner_changed`, `413` under a lowered limit),
///   then `409 idempotency_conflict`, `507` (disk full) and `500`.
/// - **The body rule:** a request has a body when it declares a non-zero `Content-Length`
///   or any `Transfer-Encoding`; a refusal before its body was read closes the connection.
/// - **A partner disabled meanwhile:** every refusal of an upload after the partner was
///   decided is confirmed against the registry first (`Refusal.confirmPartner`); if the
///   certificate maps to no active partner any more, `partnerRevoked` answers `403` instead.
/// - **The audit entry** of every outcome (`AuditEntry`): accepted, replayed and conflicting
///   uploads are audited in the commit's own transaction (`auditEntry(for:name:)`).
struct UploadStateMachine {
    /// What the decisions need from a request head.
    struct Head: Sendable, Equatable {
        var method: String
        var route: InboxRoute
        /// The `Content-Length` header as sent, if any.
        var contentLength: String?
        var chunked: Bool
        var hasTransferEncoding: Bool
        var contentDigest: String?
        var idempotencyKey: String?
        var expectContinue: Bool
        var contentDisposition: String?
        var contentType: String?
        /// A transfer coding other than `chunked` was named (`gzip`, `gzip, chunked`, ...).
        var unsupportedTransferEncoding = false
        /// An HTTP/1.1 request without a `Host` header (RFC 9112 requires one).
        var missingHost = false
        /// The resumable upload headers, as sent (see `ResumableUpload`).
        var uploadComplete: String?
        var uploadLength: String?
        var uploadOffset: String?
        var reprDigest: String?

        /// The body rule.
        var hasBody: Bool { (contentLength != nil && contentLength != "0") || hasTransferEncoding }
        var declaredLength: Int64? { contentLength.flatMap { Int64($0) } }
    }

    /// The partner a certificate maps to now, or why none.
    enum PartnerDecision: Sendable, Equatable {
        /// `pulls`: the partner fetches its files from its outbox (`--delivery pull`).
        case accepted(partner: String, uploadLimit: Int64, pulls: Bool = false)
        case refused(reason: String)
    }

    /// A line for the audit trail, before the connection's certificate and address are added.
    struct AuditEntry: Sendable, Equatable {
        var outcome: AuditEvent.Outcome
        var status: Int?
        var partner: String?
        var detail: String
    }

    /// An error answer: `{"error": code, "message": message}`.
    struct Refusal: Sendable, Equatable {
        var status: Int
        var code: String
        var message: String
        /// Close the connection after the answer (a body was not read, or not all of it).
        var close: Bool
        var headers: [String: String] = [:]
        /// What the audit trail records; `nil` when the commit already recorded it.
        var audit: AuditEntry?
        /// Ask the registry whether the certificate still maps to an active partner before
        /// answering; if not, answer `partnerRevoked` instead.
        var confirmPartner = false
        /// Remove the staged file first.
        var discardStaged = false
        /// The refusal is a failure of the gateway itself (logged as an error).
        var isGatewayFailure = false
    }

    /// What an upload will be received as.
    struct Reception: Sendable, Equatable {
        var id: String
        var filename: String
        /// Write past the page cache: a large declared length.
        var direct: Bool
        /// Answer `100 Continue` first: the client asked for it.
        var sendContinue: Bool
        var idempotencyKey: String? = nil
        /// Received as a resumable upload: the request carried `Upload-Complete`.
        var resumable: ResumableUpload.Creation? = nil
    }

    /// How the commit of an upload ended.
    enum CommitResult: Sendable, Equatable {
        case stored(ReceiptCommit)
        /// The partners changed while the body arrived and no longer allow storing it.
        case objection(Refusal)
        case failed(WharfError)
    }

    enum Action: Sendable, Equatable {
        /// Map the certificate to a partner; for an upload the partners remembered for the
        /// certificate may decide (the commit confirms them).
        case decidePartner(rememberedIfUpload: Bool)
        case refuse(Refusal)
        /// Read the rest of the request, which should have no body (`listDrained`).
        case drain
        /// Answer with the partner's most recent receipts.
        case list(partner: String)
        /// Answer from the pull partner's outbox.
        case outbox(OutboxRequest, partner: String)
        /// Carry out a request to one of the partner's resumable uploads (decided by
        /// `ResumableUpload`).
        case upload(UploadRequest, partner: String, limit: Int64)
        /// Answer `OPTIONS`: uploads may resume, within the partner's limit.
        case options(limit: Int64)
        /// Receive the body into a staged file, after `100 Continue` if asked.
        case receive(Reception)
        /// Hand the chunk just reported to the staged file.
        case write
        /// Wait for the staged file's writes and hashing (`digestKnown` follows).
        case settle
        /// Commit this receipt and move the staged file into the inbox (`commitEnded`).
        case commit(Receipt)
        /// Answer with a receipt; discard the staged file first if asked (a replay).
        case reply(status: Int, receipt: Receipt, discardStaged: Bool)
        /// Write no answer and close, after recording the entry if there is one: the request
        /// stream ended or failed (the client went away, a timeout), so no one is there to
        /// read an answer.
        case abandon(AuditEntry?)
    }

    private enum State {
        case awaitingHead
        case decidingPartner(Head)
        case draining(partner: String, outbox: OutboxRequest?)
        case receiving(Upload)
        case settling(Upload)
        case committing(Upload)
        case done
    }

    private struct Upload {
        var head: Head
        var partner: String
        var limit: Int64
        var reception: Reception
        var digest: ContentDigest?
        var idempotencyKey: String?
        var received: Int64 = 0
    }

    private var state = State.awaitingHead
    /// The file name of the upload, once the request is known to be one.
    private var filename: String?
    private let newID: String
    private let directWriteThreshold: Int64
    private let partialUploadMaxAge: Duration

    /// - Parameters:
    ///   - id: the receipt id an upload gets.
    ///   - directWriteThreshold: uploads declaring at least this many bytes are written
    ///     past the page cache.
    ///   - partialUploadMaxAge: how long a resumable upload may stay untouched (announced
    ///     in `Upload-Limit`).
    init(id: String, directWriteThreshold: Int64, partialUploadMaxAge: Duration = .seconds(86_400)) {
        self.newID = id
        self.directWriteThreshold = directWriteThreshold
        self.partialUploadMaxAge = partialUploadMaxAge
    }

    // MARK: Events

    mutating func headReceived(_ head: Head) -> Action {
        guard case .awaitingHead = state else { return unexpected("a second head") }
        state = .decidingPartner(head)
        return .decidePartner(rememberedIfUpload: head.route.isUpload)
    }

    mutating func partnerDecided(_ decision: PartnerDecision) -> Action {
        guard case .decidingPartner(let head) = state else { return unexpected("a partner decision") }
        let partner: String
        let limit: Int64
        let pulls: Bool
        switch decision {
        case .refused(let reason):
            return finish(Self.forbidden(reason, detail: reason))
        case .accepted(let name, let uploadLimit, let pulling):
            (partner, limit, pulls) = (name, uploadLimit, pulling)
        }
        func refuse(_ status: Int, _ code: String, _ message: String, close: Bool = head.hasBody) -> Action {
            finish(Refusal(
                status: status, code: code, message: message, close: close,
                audit: AuditEntry(outcome: .refused, status: status, partner: partner, detail: message)
            ))
        }
        // How the message is framed comes first: with a framing Wharf does not read, nothing
        // after the head can be trusted, so the connection closes after the one answer.
        if head.unsupportedTransferEncoding {
            return refuse(501, "unsupported_transfer_encoding", "only the chunked transfer coding is supported", close: true)
        }
        if head.missingHost {
            return refuse(400, "missing_host", "an HTTP/1.1 request needs a Host header", close: true)
        }
        let filename: String
        switch head.route {
        case .notFound:
            return refuse(404, "not_found", "no such resource: the inbox is at /inbox")
        case .methodNotAllowed(let allowed):
            var action = refuse(405, "method_not_allowed", "\(head.method) is not allowed here; use \(allowed)")
            if case .refuse(var refusal) = action {
                refusal.headers["Allow"] = allowed
                action = .refuse(refusal)
            }
            return action
        case .badName(let error):
            return refuse(400, "bad_filename", error.description)
        case .badQuery(let message):
            return refuse(400, "bad_query", message)
        case .list:
            state = .draining(partner: partner, outbox: nil)
            return .drain
        case .upload(let request):
            state = .done
            return .upload(request, partner: partner, limit: limit)
        case .options:
            state = .done
            return .options(limit: limit)
        case .outbox(let request):
            guard pulls else {
                return refuse(
                    409, "not_a_pull_partner",
                    "partner '\(partner)' is sent its files (push delivery), so its outbox is empty; the operator can switch it with --delivery pull"
                )
            }
            state = .draining(partner: partner, outbox: request)
            return .drain
        case .put(let name):
            filename = name.rawValue
        case .post:
            let given = head.contentDisposition.flatMap(UploadHeaders.filename(fromContentDisposition:))
            filename = given ?? UploadHeaders.generatedName(id: newID, contentType: head.contentType)
            do {
                _ = try InboundFileName(filename)
            } catch {
                return refuse(400, "bad_filename", error.description)
            }
        }

        // An upload: refusals from here on name the file and close the connection.
        self.filename = filename
        func refuseUpload(_ status: Int, _ code: String, _ message: String) -> Action {
            finish(uploadRefusal(status, code, message, partner: partner, filename: filename))
        }
        let declared = head.declaredLength
        guard declared != nil || head.chunked else {
            return refuseUpload(411, "length_required", "send Content-Length or a chunked body")
        }
        if let declared, declared > limit {
            var refusal = uploadRefusal(
                413, "too_large", "the body of \(declared) bytes is over this partner's limit of \(limit) bytes", partner: partner, filename: filename
            )
            if ResumableUpload.boolean(head.uploadComplete) != nil {
                refusal.headers["Upload-Limit"] = ResumableUpload.limits(maxSize: limit, maxAge: partialUploadMaxAge)
            }
            return finish(refusal)
        }
        let content: ContentDigest?
        let representation: ContentDigest?
        let key: String?
        do throws(WharfError) {
            content = try head.contentDigest.flatMap { header throws(WharfError) in try ContentDigest(header: header) }
            representation = try head.reprDigest.flatMap { header throws(WharfError) in try ContentDigest(header: header) }
            key = try UploadHeaders.idempotencyKey(head.idempotencyKey)
        } catch {
            return refuseUpload(400, "bad_header", error.description)
        }
        var reception = Reception(
            id: newID, filename: filename, direct: (declared ?? 0) >= directWriteThreshold,
            sendContinue: head.expectContinue, idempotencyKey: key
        )
        // A client that sends `Upload-Complete` can resume (a value that is not a Boolean
        // is ignored, as the draft says, and the upload is an ordinary one).
        if let complete = ResumableUpload.boolean(head.uploadComplete) {
            switch ResumableUpload.length(complete: complete, uploadLength: head.uploadLength, contentLength: declared, offset: 0, known: nil) {
            case .failure(let refusal):
                return refuseUpload(refusal.status, refusal.code, refusal.message)
            case .success(let length):
                if let length, length > limit {
                    var refusal = uploadRefusal(
                        413, "too_large", "the file of \(length) bytes is over this partner's limit of \(limit) bytes",
                        partner: partner, filename: filename
                    )
                    refusal.headers["Upload-Limit"] = ResumableUpload.limits(maxSize: limit, maxAge: partialUploadMaxAge)
                    return finish(refusal)
                }
                reception.resumable = ResumableUpload.Creation(
                    complete: complete, length: length,
                    wholeSHA256: representation?.sha256Hex ?? (complete ? content?.sha256Hex : nil), partSHA256: content?.sha256Hex
                )
            }
        }
        let digest = content ?? representation
        state = .receiving(Upload(head: head, partner: partner, limit: limit, reception: reception, digest: digest, idempotencyKey: key))
        return .receive(reception)
    }

    /// The rest of a request that should have no body was read: `hadBody` if it had one,
    /// `nil` if the request stream ended or failed first.
    mutating func listDrained(hadBody: Bool?) -> Action {
        guard case .draining(let partner, let outbox) = state else { return unexpected("a drained request") }
        guard let hadBody else {
            state = .done
            return .abandon(nil)
        }
        if hadBody {
            return finish(Refusal(status: 400, code: "unexpected_body", message: "this request takes no body", close: true))
        }
        state = .done
        if let outbox { return .outbox(outbox, partner: partner) }
        return .list(partner: partner)
    }

    /// `count` more bytes of body arrived.
    mutating func bodyChunk(_ count: Int) -> Action {
        guard case .receiving(var upload) = state else { return unexpected("a body chunk") }
        upload.received += Int64(count)
        if upload.received > upload.limit {
            var refusal = uploadRefusal(
                413, "too_large", "the body passed this partner's limit of \(upload.limit) bytes",
                partner: upload.partner, filename: upload.reception.filename
            )
            refusal.discardStaged = true
            return finish(refusal)
        }
        state = .receiving(upload)
        return .write
    }

    mutating func bodyEnded() -> Action {
        guard case .receiving(let upload) = state else { return unexpected("the end of a body") }
        state = .settling(upload)
        return .settle
    }

    /// The body's SHA-256 (hex) is known, at `now`.
    mutating func digestKnown(_ sha256: String, now: Date) -> Action {
        guard case .settling(let upload) = state else { return unexpected("a digest") }
        if let declared = upload.digest, declared.sha256Hex != sha256 {
            var refusal = uploadRefusal(
                400, "digest_mismatch", "the body's SHA-256 is \(sha256), not the one Content-Digest declares",
                partner: upload.partner, filename: upload.reception.filename
            )
            refusal.discardStaged = true
            return finish(refusal)
        }
        let name = upload.reception.filename
        let receipt = Receipt(
            id: upload.reception.id, partner: upload.partner, filename: name,
            storedName: Spool.storedName(id: upload.reception.id, filename: name),
            size: upload.received, sha256: sha256, receivedAt: now, idempotencyKey: upload.idempotencyKey
        )
        state = .committing(upload)
        return .commit(receipt)
    }

    mutating func commitEnded(_ result: CommitResult) -> Action {
        guard case .committing(let upload) = state else { return unexpected("a commit") }
        state = .done
        return Self.outcome(of: result, partner: upload.partner, filename: upload.reception.filename)
    }

    /// What the outcome of committing an upload's receipt answers: the receipt (`201`, or
    /// `200` for a replay), or the refusal.
    static func outcome(of result: CommitResult, partner: String, filename: String) -> Action {
        switch result {
        case .stored(.committed(let receipt)):
            return .reply(status: 201, receipt: receipt, discardStaged: false)
        case .stored(.replay(let earlier)):
            return .reply(status: 200, receipt: earlier, discardStaged: true)
        case .stored(.conflict):
            // Audited by the commit.
            return .refuse(Refusal(
                status: 409, code: "idempotency_conflict", message: "this Idempotency-Key was used before with other content",
                close: false, discardStaged: true
            ))
        case .objection(var refusal):
            refusal.discardStaged = true
            return .refuse(refusal)
        case .failed(let error):
            return .refuse(storageRefusal(error, partner: partner, filename: filename))
        }
    }

    /// Writing, syncing or moving the staged file failed.
    mutating func storageFailed(_ error: WharfError) -> Action {
        switch state {
        case .receiving(let upload), .settling(let upload), .committing(let upload):
            return storageFailed(error, upload: upload)
        default:
            return unexpected("a storage failure")
        }
    }

    /// The request stream ended before the body did: the client went away.
    mutating func clientGone() -> Action {
        abandon { "the client disconnected after \($0) bytes" }
    }

    /// The body is not valid HTTP/1.1 framing (a malformed chunk): answered `400`, nothing
    /// kept, the connection closed.
    mutating func malformedBody(_ reason: String) -> Action {
        guard case .receiving(let upload) = state else { return abandon { _ in reason } }
        var refusal = uploadRefusal(
            400, "bad_request", "the body is not valid HTTP/1.1: \(reason)", partner: upload.partner, filename: upload.reception.filename
        )
        refusal.discardStaged = true
        return finish(refusal)
    }

    /// The request stream failed mid-body (a timeout, a reset).
    mutating func brokeOff(_ reason: String) -> Action {
        abandon { "the request broke off after \($0) bytes of body: \(reason)" }
    }

    /// The answer instead of `refusal` when its confirmation found that the certificate
    /// maps to no active partner any more.
    func partnerRevoked(_ reason: String, instead refusal: Refusal) -> Refusal {
        var revoked = Self.forbidden(reason, detail: filename.map { "\($0): \(reason)" } ?? reason)
        revoked.discardStaged = refusal.discardStaged
        return revoked
    }

    // MARK: Decisions the commit makes on the thread pool

    /// The objection to storing `size` bytes for `partner` now that the partners decide
    /// `now`; `nil` if the upload can still be stored.
    static func objection(partner: String, size: Int64, filename: String, now: PartnerDecision) -> Refusal? {
        switch now {
        case .refused(let reason):
            return forbidden(reason, detail: "\(filename): this client certificate is not accepted: \(reason)")
        case .accepted(let current, _, _) where current != partner:
            let message = "this client certificate now maps to partner '\(current)'; send the file again"
            return Refusal(
                status: 409, code: "partner_changed", message: message, close: true,
                audit: AuditEntry(outcome: .refused, status: 409, partner: partner, detail: "\(filename): \(message)")
            )
        case .accepted(let current, let limit, _) where size > limit:
            let message = "the body of \(size) bytes is over this partner's limit of \(limit) bytes"
            return Refusal(
                status: 413, code: "too_large", message: message, close: true,
                audit: AuditEntry(outcome: .refused, status: 413, partner: current, detail: "\(filename): \(message)")
            )
        case .accepted:
            return nil
        }
    }

    /// What follows a commit that wrote nothing because the partners changed since the
    /// upload was authorized, now that they decide `now`: an objection to the upload as
    /// they are (as `objection`), or after the `round`th such commit of `rounds`, a `503`
    /// (the partners kept changing; the client sends again later); else `nil`, commit
    /// again as of them.
    static func afterPartnersChanged(
        partner: String, size: Int64, filename: String, now: PartnerDecision, round: Int, of rounds: Int
    ) -> Refusal? {
        if let objection = objection(partner: partner, size: size, filename: filename, now: now) { return objection }
        guard round >= rounds else { return nil }
        let message = "the partners' settings changed during each of \(rounds) attempts to store this upload; send the file again later"
        var refusal = Refusal(
            status: 503, code: "partners_changing", message: message, close: true,
            audit: AuditEntry(outcome: .refused, status: 503, partner: partner, detail: "\(filename): \(message)")
        )
        refusal.headers["Retry-After"] = "\(retryAfterUnavailable)"
        return refusal
    }

    /// The audit entry recorded with a commit's outcome, in the commit's transaction.
    static func auditEntry(for commit: ReceiptCommit, name: String) -> AuditEntry {
        switch commit {
        case .committed(let receipt):
            AuditEntry(outcome: .accepted, status: 201, partner: receipt.partner, detail: "\(name): \(receipt.size) bytes, receipt \(receipt.id)")
        case .replay(let earlier):
            AuditEntry(outcome: .replayed, status: 200, partner: earlier.partner, detail: "\(name): replay of receipt \(earlier.id)")
        case .conflict(let earlier):
            AuditEntry(outcome: .refused, status: 409, partner: earlier.partner, detail: "\(name): Idempotency-Key of receipt \(earlier.id) with other content")
        }
    }

    // MARK: Helpers

    private static func forbidden(_ reason: String, detail: String) -> Refusal {
        Refusal(
            status: 403, code: "unknown_partner", message: "this client certificate is not accepted: \(reason)", close: true,
            audit: AuditEntry(outcome: .refused, status: 403, partner: nil, detail: detail)
        )
    }

    private func uploadRefusal(_ status: Int, _ code: String, _ message: String, partner: String, filename: String) -> Refusal {
        Self.uploadRefusal(status, code, message, partner: partner, filename: filename)
    }

    /// A refusal of an upload, confirmed against the partners, closing the connection.
    static func uploadRefusal(_ status: Int, _ code: String, _ message: String, partner: String, filename: String) -> Refusal {
        Refusal(
            status: status, code: code, message: message, close: true,
            audit: AuditEntry(outcome: .refused, status: status, partner: partner, detail: "\(filename): \(message)"),
            confirmPartner: true
        )
    }

    private mutating func storageFailed(_ error: WharfError, upload: Upload) -> Action {
        finish(Self.storageRefusal(error, partner: upload.partner, filename: upload.reception.filename))
    }

    /// The refusal when writing, syncing or moving a file, or recording it, failed: `507`
    /// when the disk is full, `503` with `Retry-After` when the registry cannot be reached
    /// (nothing was acknowledged; the client sends it again).
    static func storageRefusal(_ error: WharfError, partner: String, filename: String) -> Refusal {
        var refusal: Refusal
        switch error.code {
        case .insufficientStorage:
            refusal = uploadRefusal(507, "insufficient_storage", "the gateway's disk is full; try again later", partner: partner, filename: filename)
        case .unavailable:
            refusal = uploadRefusal(503, "unavailable", "the gateway's registry cannot be reached; send the file again later", partner: partner, filename: filename)
            refusal.headers["Retry-After"] = "\(retryAfterUnavailable)"
        default:
            refusal = uploadRefusal(500, "storage", "the file could not be stored; try again later", partner: partner, filename: filename)
        }
        refusal.discardStaged = true
        refusal.isGatewayFailure = true
        return refusal
    }

    /// Seconds a client is asked to wait when the registry cannot be reached.
    static let retryAfterUnavailable = 10

    private mutating func abandon(_ detail: (Int64) -> String) -> Action {
        guard case .receiving(let upload) = state else {
            state = .done
            return .abandon(nil)
        }
        state = .done
        return .abandon(AuditEntry(
            outcome: .refused, status: nil, partner: upload.partner, detail: "\(upload.reception.filename): \(detail(upload.received))"
        ))
    }

    private mutating func finish(_ refusal: Refusal) -> Action {
        state = .done
        return .refuse(refusal)
    }

    /// An event the handler should not send in this state: a bug; the request is dropped.
    private mutating func unexpected(_ event: String) -> Action {
        assertionFailure("\(event) in state \(state)")
        state = .done
        return .abandon(AuditEntry(outcome: .refused, status: nil, partner: nil, detail: "internal error: \(event) out of order"))
    }
}
