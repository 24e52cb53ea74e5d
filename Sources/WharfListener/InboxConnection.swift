import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL
import ServiceLifecycle
import WharfCore
import WharfPKI
import WharfSpool

import X509

/// One client connection: maps its certificate to a partner on every request and
/// answers the inbox API.
///
/// Every answer reflects the registry as it is when the answer is given: an upload may
/// start from the partners remembered for its certificate (`RememberedOwners`), and is
/// decided again when it is committed or refused if the partners changed meanwhile.
struct InboxConnection {
    typealias Requests = NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator
    typealias Responses = NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    let connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    let anchors: TrustAnchors
    let context: InboxContext

    /// Whether the connection waits for a request head, and whether shutdown began.
    private struct State {
        var idle = true
        var shuttingDown = false
    }

    func run() async {
        let state = NIOLockedValueBox(State())
        let channel = connection.channel
        let remote = Self.describe(channel.remoteAddress)
        var servedRequests = 0
        do {
            try await withGracefulShutdownHandler {
                try await connection.executeThenClose { inbound, outbound in
                    var requests = inbound.makeAsyncIterator()
                    var presented: PresentedCertificate?
                    while true {
                        let stop = state.withLockedValue { state in
                            state.idle = true
                            return state.shuttingDown
                        }
                        if stop { return }
                        guard let part = try await requests.next() else { return }
                        state.withLockedValue { $0.idle = false }
                        guard case .head(let head) = part else { return }
                        if presented == nil {
                            presented = try await presentedCertificate(channel)
                        }
                        servedRequests += 1
                        var reply = await handle(head, presented, remote: remote, requests: &requests)
                        if !head.isKeepAlive || state.withLockedValue({ $0.shuttingDown }) {
                            reply.closeConnection = true
                        }
                        guard reply.isWritten else { return }
                        try await write(reply, for: head, to: outbound)
                        if reply.closeConnection { return }
                    }
                }
            } onGracefulShutdown: {
                let idle = state.withLockedValue { state in
                    state.shuttingDown = true
                    return state.idle
                }
                if idle { channel.close(promise: nil) }
            }
        } catch {
            if servedRequests == 0 {
                await record(AuditEvent(
                    outcome: .refused, status: nil, partner: nil, subject: nil, fingerprint: nil,
                    remoteAddress: remote, detail: "TLS handshake failed: \(Self.reason(error))"
                ))
            }
            context.logger.debug("connection ended", metadata: ["remote": "\(remote)", "error": "\(error)"])
        }
    }

    // MARK: Requests

    private func handle(
        _ head: HTTPRequestHead, _ presented: PresentedCertificate?, remote: String,
        requests: inout Requests
    ) async -> HTTPReply {
        let hasBody = head.headers.contains(name: "content-length") && head.headers.first(name: "content-length") != "0"
            || head.headers.contains(name: "transfer-encoding")
        let audit = AuditTemplate(presented: presented, remote: remote)
        let route = InboxRoute(method: head.method, uri: head.uri)

        // Who is asking: for an upload possibly from the partners remembered for this
        // certificate (confirmed when it is committed), otherwise from the registry as it is now.
        let authorized: Authorized
        switch await authorize(presented, rememberedIfUpload: route.isUpload) {
        case .success(let accepted):
            authorized = accepted
        case .failure(let refusal):
            await record(audit.event(.refused, 403, partner: nil, detail: refusal.reason))
            return Self.forbidden(refusal.reason)
        }
        let partner = authorized.partner

        let refuse = { (status: HTTPResponseStatus, code: String, message: String) async -> HTTPReply in
            await record(audit.event(.refused, Int(status.code), partner: partner.name.rawValue, detail: message))
            return .error(status, code, message, close: hasBody)
        }
        switch route {
        case .notFound:
            return await refuse(.notFound, "not_found", "no such resource: the inbox is at /inbox")
        case .methodNotAllowed(let allowed):
            var reply = await refuse(.methodNotAllowed, "method_not_allowed", "\(head.method.rawValue) is not allowed here; use \(allowed)")
            reply.extraHeaders.append(("Allow", allowed))
            return reply
        case .badName(let error):
            return await refuse(.badRequest, "bad_filename", error.description)
        case .list:
            switch await drainEmptyBody(&requests) {
            case true?: break
            case false?: return .error(.badRequest, "unexpected_body", "GET takes no body", close: true)
            case nil: return .unwritten
            }
            do {
                let (store, limit) = (context.store, context.configuration.receiptListLimit)
                let receipts = try await context.threadPool.runIfActive { try store.receipts(partner: partner.name.rawValue, limit: limit) }
                return .receipts(receipts)
            } catch {
                return .error(.internalServerError, "storage", "the receipts cannot be read now")
            }
        case .put(let name):
            return await upload(name: name.rawValue, head: head, authorized: authorized, audit: audit, requests: &requests)
        case .post:
            let id = Receipt.newID()
            let given = head.headers.first(name: "content-disposition").flatMap(UploadHeaders.filename(fromContentDisposition:))
            let name = given ?? UploadHeaders.generatedName(id: id, contentType: head.headers.first(name: "content-type"))
            do {
                _ = try InboundFileName(name)
            } catch {
                return await refuse(.badRequest, "bad_filename", error.description)
            }
            return await upload(name: name, id: id, head: head, authorized: authorized, audit: audit, requests: &requests)
        }
    }

    /// A certificate mapped to an active partner, as of a partner generation.
    struct Authorized: Sendable {
        let partner: Partner
        let presented: PresentedCertificate
        let generation: Int64
    }

    struct Refusal: Error {
        let reason: String
    }

    private func authorize(_ presented: PresentedCertificate?, rememberedIfUpload: Bool) async -> Result<Authorized, Refusal> {
        guard let presented else { return .failure(Refusal(reason: "no client certificate")) }
        if rememberedIfUpload, let owners = context.rememberedOwners.owners(of: presented.fingerprint),
           case .accepted(let partner) = InboundAuthorization.decide(presented, owners: owners.partners, at: Date()) {
            return .success(Authorized(partner: partner, presented: presented, generation: owners.generation))
        }
        do {
            return try await context.threadPool.runIfActive { try decideNow(presented) }
        } catch {
            context.logger.error("registry lookup failed", metadata: ["error": "\(error)"])
            return .failure(Refusal(reason: "the registry cannot be read now"))
        }
    }

    /// Decides from the registry as it is now, and remembers what it read. Blocking.
    private func decideNow(_ presented: PresentedCertificate) throws(WharfError) -> Result<Authorized, Refusal> {
        let owners = try context.store.owners(ofFingerprint: presented.fingerprint, subject: presented.subject)
        context.rememberedOwners.remember(owners, for: presented.fingerprint)
        switch InboundAuthorization.decide(presented, owners: owners.partners, at: Date()) {
        case .accepted(let partner):
            return .success(Authorized(partner: partner, presented: presented, generation: owners.generation))
        case .refused(let reason):
            return .failure(Refusal(reason: reason))
        }
    }

    /// The decision for an authorized request decided again, if the partners changed since
    /// it was made; `nil` if they did not. Blocking.
    private func redecided(_ authorized: Authorized) throws(WharfError) -> Result<Authorized, Refusal>? {
        guard try context.store.partnerGeneration() != authorized.generation else { return nil }
        return try decideNow(authorized.presented)
    }

    /// Why an upload authorized earlier cannot be stored now that the partners changed.
    struct Objection: Error {
        let status: HTTPResponseStatus
        let code: String
        let message: String
        /// For the audit trail: no partner once the certificate maps to none.
        let partner: String?
    }

    /// The objection to storing an upload of `size` bytes authorized as `authorized`, now
    /// that the partners decide `now`; `nil` if it can still be stored.
    private static func objection(to authorized: Authorized, size: Int64, now: Result<Authorized, Refusal>) -> Objection? {
        switch now {
        case .failure(let refusal):
            return Objection(
                status: .forbidden, code: "unknown_partner",
                message: "this client certificate is not accepted: \(refusal.reason)", partner: nil
            )
        case .success(let current) where current.partner.name != authorized.partner.name:
            return Objection(
                status: .conflict, code: "partner_changed",
                message: "this client certificate now maps to partner '\(current.partner.name)'; send the file again",
                partner: authorized.partner.name.rawValue
            )
        case .success(let current) where size > current.partner.uploadLimit:
            return Objection(
                status: .payloadTooLarge, code: "too_large",
                message: "the body of \(size) bytes is over this partner's limit of \(current.partner.uploadLimit) bytes",
                partner: current.partner.name.rawValue
            )
        case .success:
            return nil
        }
    }

    private static func forbidden(_ reason: String) -> HTTPReply {
        .error(.forbidden, "unknown_partner", "this client certificate is not accepted: \(reason)", close: true)
    }

    // MARK: Uploads

    private func upload(
        name: String, id: String = Receipt.newID(), head: HTTPRequestHead, authorized: Authorized, audit: AuditTemplate,
        requests: inout Requests
    ) async -> HTTPReply {
        let partner = authorized.partner
        let refuse = { (status: HTTPResponseStatus, code: String, message: String) async -> HTTPReply in
            // A partner disabled since the upload was authorized hears that, not the other reason.
            if case .failure(let refusal)? = try? await context.threadPool.runIfActive({ try redecided(authorized) }) {
                await record(audit.event(.refused, 403, partner: nil, detail: "\(name): \(refusal.reason)"))
                return Self.forbidden(refusal.reason)
            }
            await record(audit.event(.refused, Int(status.code), partner: partner.name.rawValue, detail: "\(name): \(message)"))
            return .error(status, code, message, close: true)
        }
        let limit = partner.uploadLimit
        let declared = head.headers.first(name: "content-length").flatMap { Int64($0) }
        let chunked = head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        guard declared != nil || chunked else {
            return await refuse(.lengthRequired, "length_required", "send Content-Length or a chunked body")
        }
        if let declared, declared > limit {
            return await refuse(.payloadTooLarge, "too_large", "the body of \(declared) bytes is over this partner's limit of \(limit) bytes")
        }
        let declaredDigest: ContentDigest?
        let idempotencyKey: String?
        do {
            declaredDigest = try head.headers.first(name: "content-digest").flatMap { header throws(WharfError) in try ContentDigest(header: header) }
            idempotencyKey = try UploadHeaders.idempotencyKey(head.headers)
        } catch {
            return await refuse(.badRequest, "bad_header", error.description)
        }
        if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
            // Written on the event loop, and only while the connection is open: a request
            // that broke off meanwhile has had its 400 from NIO, which closed the connection,
            // and a 100 after that would be a second response.
            let channel = connection.channel
            let proceed = HTTPServerResponsePart.head(HTTPResponseHead(version: head.version, status: .continue))
            try? await channel.eventLoop.submit {
                if channel.isActive { channel.writeAndFlush(proceed, promise: nil) }
            }.get()
        }

        // The staged file is opened by the first write, and a small upload is written,
        // fsynced, committed and moved in one trip to the thread pool.
        let spool = context.spool
        let direct = (declared ?? 0) >= context.configuration.directWriteThreshold
        let staged = LazyStagedFile(
            spool: spool, id: id, direct: direct, flushSize: context.configuration.writeBufferSize,
            threadPool: context.threadPool, eventLoop: connection.channel.eventLoop
        )

        var size: Int64 = 0
        do {
            var ended = false
            while !ended, let part = try await requests.next() {
                switch part {
                case .body(let chunk):
                    size += Int64(chunk.readableBytes)
                    if size > limit {
                        staged.discard()
                        return await refuse(.payloadTooLarge, "too_large", "the body passed this partner's limit of \(limit) bytes")
                    }
                    try await staged.append(chunk)
                case .end:
                    ended = true
                case .head:
                    break
                }
            }
            guard ended else {
                // The client stopped sending mid-body; NIO has answered the cut-off request
                // with a 400 if the connection still could take one.
                staged.discard()
                await record(audit.event(.refused, nil, partner: partner.name.rawValue, detail: "\(name): the client disconnected after \(size) bytes"))
                return .unwritten
            }
        } catch {
            staged.discard()
            if let error = error as? WharfError { return await storageFailure(error, refuse: refuse) }
            await record(audit.event(
                .refused, nil, partner: partner.name.rawValue,
                detail: "\(name): the request broke off after \(size) bytes of body: \(Self.reason(error))"
            ))
            return .unwritten
        }

        let sha256: String
        do {
            try await staged.settled()
            sha256 = staged.sha256()
        } catch {
            staged.discard()
            return await storageFailure(error as? WharfError ?? WharfError(.fileSystem, "\(error)"), refuse: refuse)
        }
        if let declaredDigest, declaredDigest.sha256Hex != sha256 {
            staged.discard()
            return await refuse(.badRequest, "digest_mismatch", "the body's SHA-256 is \(sha256), not the one Content-Digest declares")
        }

        let receipt = Receipt(
            id: id, partner: partner.name.rawValue, filename: name, storedName: Spool.storedName(id: id, filename: name),
            size: size, sha256: sha256, receivedAt: Date(), idempotencyKey: idempotencyKey
        )
        let store = context.store
        let received = size
        do {
            // The partners are checked again in the trip that commits, so that a partner
            // disabled or changed while the body arrived gets nothing stored.
            let stored = try await context.threadPool.runIfActive { () throws -> Result<ReceiptCommit, Objection> in
                if let now = try redecided(authorized), let objection = Self.objection(to: authorized, size: received, now: now) {
                    return .failure(objection)
                }
                let file = try staged.finish()
                return .success(try store.commit(receipt, audit: { audit.event(for: $0, name: name) }) {
                    try file.install(in: spool, receipt: receipt)
                })
            }
            let outcome: ReceiptCommit
            switch stored {
            case .success(let committed):
                outcome = committed
            case .failure(let objection):
                staged.discard()
                let detail = "\(name): \(objection.message)"
                await record(audit.event(.refused, Int(objection.status.code), partner: objection.partner, detail: detail))
                return .error(objection.status, objection.code, objection.message, close: true)
            }
            switch outcome {
            case .committed(let receipt):
                return .receipt(.created, receipt)
            case .replay(let earlier):
                staged.discard()
                return .receipt(.ok, earlier)
            case .conflict:
                staged.discard()
                return .error(.conflict, "idempotency_conflict", "this Idempotency-Key was used before with other content")
            }
        } catch {
            staged.discard()
            return await storageFailure(error as? WharfError ?? WharfError(.fileSystem, "\(error)"), refuse: refuse)
        }
    }

    private func storageFailure(
        _ error: any Error, refuse: (HTTPResponseStatus, String, String) async -> HTTPReply
    ) async -> HTTPReply {
        context.logger.error("upload not stored", metadata: ["error": "\(error)"])
        if let error = error as? WharfError, error.code == .insufficientStorage {
            return await refuse(.insufficientStorage, "insufficient_storage", "the gateway's disk is full; try again later")
        }
        return await refuse(.internalServerError, "storage", "the file could not be stored; try again later")
    }

    /// Consumes the rest of a request that should have no body; `false` if it had one, `nil`
    /// if the request stream failed or ended first.
    private func drainEmptyBody(_ requests: inout Requests) async -> Bool? {
        while let part = try? await requests.next() {
            switch part {
            case .end: return true
            case .body(let chunk) where chunk.readableBytes > 0: return false
            default: continue
            }
        }
        return nil
    }

    // MARK: Plumbing

    private func write(_ reply: HTTPReply, for request: HTTPRequestHead, to outbound: Responses) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(reply.body.count))
        for (name, value) in reply.extraHeaders { headers.add(name: name, value: value) }
        headers.add(name: "Connection", value: reply.closeConnection ? "close" : "keep-alive")
        try await outbound.write(contentsOf: [
            .head(HTTPResponseHead(version: request.version, status: reply.status, headers: headers)),
            .body(.byteBuffer(ByteBuffer(bytes: reply.body))),
            .end(nil),
        ])
    }

    private func presentedCertificate(_ channel: any Channel) async throws -> PresentedCertificate? {
        guard let peer = try await channel.nioSSL_peerCertificate().get() else { return nil }
        let der = try peer.toDERBytes()
        return try anchors.presented.presented(der) {
            let leaf = try Certificate(derEncoded: der)
            return PresentedCertificate(
                fingerprint: leaf.fingerprint, subject: leaf.subjectName,
                subjectText: leaf.subject.description, issuer: anchors.issuer(of: leaf)
            )
        }
    }

    /// Appends to the audit trail on the thread pool (the write waits for an fsync).
    private func record(_ event: AuditEvent) async {
        let store = context.store
        do {
            try await context.threadPool.runIfActive { try store.record(event) }
        } catch {
            context.logger.error("audit event not recorded", metadata: ["error": "\(error)"])
        }
    }

    /// The OpenSSL reason of a handshake failure (`PEER_DID_NOT_RETURN_A_CERTIFICATE`,
    /// `CERTIFICATE_VERIFY_FAILED`, ...) rather than the whole error chain.
    static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        guard let marker = text.range(of: "OPENSSL_internal:") else { return text }
        let rest = text[marker.upperBound...]
        return String(rest.prefix { $0 != " " && $0 != "]" && $0 != ")" })
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress else { return "unknown" }
        let port = address.port.map(String.init) ?? "?"
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// The parts of an audit event fixed for a connection.
struct AuditTemplate: Sendable {
    let presented: PresentedCertificate?
    let remote: String

    func event(_ outcome: AuditEvent.Outcome, _ status: Int?, partner: String?, detail: String?) -> AuditEvent {
        AuditEvent(
            outcome: outcome, status: status, partner: partner, subject: presented?.subjectText,
            fingerprint: presented?.fingerprint.hex, remoteAddress: remote, detail: detail
        )
    }

    func event(for commit: ReceiptCommit, name: String) -> AuditEvent {
        switch commit {
        case .committed(let receipt):
            event(.accepted, 201, partner: receipt.partner, detail: "\(name): \(receipt.size) bytes, receipt \(receipt.id)")
        case .replay(let earlier):
            event(.replayed, 200, partner: earlier.partner, detail: "\(name): replay of receipt \(earlier.id)")
        case .conflict(let earlier):
            event(.refused, 409, partner: earlier.partner, detail: "\(name): Idempotency-Key of receipt \(earlier.id) with other content")
        }
    }
}
