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

/// One client connection: maps its certificate to a partner on every request and
/// answers the inbox API.
///
/// What to answer is decided by `UploadStateMachine`; this type only translates NIO's
/// request parts into its events and carries out its actions.
///
/// Every answer reflects the registry as it is when the answer is given: an upload may
/// start from the partners remembered for its certificate (`RememberedOwners`), and is
/// decided again when it is committed or refused if the partners changed meanwhile.
struct InboxConnection {
    typealias Requests = NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator
    typealias Responses = NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    let connection: HTTPChannel.Connection
    let identity: ClientIdentity
    let context: InboxContext
    /// The client's address as read at accept; else the channel's.
    var remoteAddress: SocketAddress?
    /// Set by the handshake if it refused a revoked certificate.
    var revocation: RevocationNote?
    /// Signs the receipts this connection answers with; none in tests of the HTTP layer alone.
    var signer: ReceiptSigner?

    /// Whether the connection waits for a request head, and whether shutdown began.
    private struct State {
        var idle = true
        var shuttingDown = false
    }

    func run() async {
        let state = NIOLockedValueBox(State())
        let channel = connection.channel
        let peer = remoteAddress ?? channel.remoteAddress
        let remote = Self.describe(peer)
        let address = peer?.ipAddress ?? "unknown"
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
                        let next: HTTPServerRequestPart?
                        do {
                            next = try await requests.next()
                        } catch let error as HTTPParserError where error != .invalidEOFState {
                            // Not HTTP/1.1: the one answer, then close (NIO's own error
                            // handler is not in the pipeline, so this is the only writer).
                            try await refuseMalformed(error, presented: presented, remote: remote, address: address, to: outbound)
                            return
                        }
                        guard let part = next else { return }
                        state.withLockedValue { $0.idle = false }
                        guard case .head(let head) = part else { return }
                        if presented == nil {
                            presented = try await identity.presented()
                        }
                        servedRequests += 1
                        var reply = await handle(head, presented, remote: remote, address: address, requests: &requests)
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
                let refused = revocation?.refusal.withLockedValue { $0 }
                let failure = refused == nil ? Self.handshakeFailure(error) : .certificateRejected
                context.instruments.handshakeFailed(reason: failure)
                // A connection closed before it sent anything is not an offence: load
                // balancers' health checks do that.
                if failure != .closed { context.defender?.record(.handshakeRefused, from: address) }
                await recordRefusal(AuditEvent(
                    outcome: .refused, status: nil, partner: nil, subject: nil, fingerprint: nil,
                    remoteAddress: remote,
                    detail: refused.map { "TLS handshake refused: \($0.detail)" + ($0.partner.map { ", a certificate of partner '\($0)'" } ?? "") }
                        ?? "TLS handshake failed: \(Self.reason(error))"
                ), code: refused?.code ?? failure.rawValue, address: address)
            }
            context.logger.debug("connection ended", metadata: ["remote": "\(remote)", "error": "\(error)"])
        }
    }

    // MARK: Requests

    /// Carries out what `UploadStateMachine` decides for one request, feeding it what
    /// happened, until it answers.
    private func handle(
        _ head: HTTPRequestHead, _ presented: PresentedCertificate?, remote: String, address: String,
        requests: inout Requests
    ) async -> HTTPReply {
        let audit = AuditTemplate(presented: presented, remote: remote)
        let started = ContinuousClock.now
        var machine = UploadStateMachine(
            id: Receipt.newID(), directWriteThreshold: context.configuration.directWriteThreshold,
            partialUploadMaxAge: context.configuration.partialUploadMaxAge
        )
        var authorized: Authorized?
        var staged: LazyStagedFile?
        /// The answer is the final one of a request that completed a resumable upload,
        /// which says so (`Upload-Complete: ?1`), whatever its status.
        var completesUpload = false
        var action = machine.headReceived(UploadStateMachine.Head(head))
        while true {
            switch action {
            case .decidePartner(let rememberedIfUpload):
                switch await authorize(presented, rememberedIfUpload: rememberedIfUpload) {
                case .success(let accepted):
                    authorized = accepted
                    action = machine.partnerDecided(.accepted(
                        partner: accepted.partner.name.rawValue, uploadLimit: accepted.partner.uploadLimit,
                        pulls: accepted.partner.outbound.delivery == .pull
                    ))
                case .failure(let refusal):
                    action = machine.partnerDecided(.refused(reason: refusal.reason))
                }
            case .refuse(var refusal):
                if refusal.discardStaged { await staged?.discard() }
                if refusal.confirmPartner, let authorized,
                   case .failure(let revoked)? = try? await context.threadPool.runIfActive({ try redecided(authorized) }) {
                    refusal = machine.partnerRevoked(revoked.reason, instead: refusal)
                }
                if refusal.isGatewayFailure {
                    context.logger.error("upload not stored", metadata: ["error": "\(refusal.message)"])
                }
                if refusal.code == "unknown_partner" { context.defender?.record(.unknownPartner, from: address) }
                if let entry = refusal.audit {
                    if entry.partner == nil {
                        await recordRefusal(audit.event(entry), code: refusal.code, address: address)
                    } else {
                        await record(audit.event(entry))
                    }
                }
                log(refusal, presented: presented, remote: remote)
                if InboxRoute(method: head.method, uri: head.uri).isUpload {
                    context.instruments.uploadFinished(
                        partner: authorized?.partner.name.rawValue, outcome: refusal.code, bytes: 0, duration: ContinuousClock.now - started
                    )
                }
                var reply = HTTPReply.error(HTTPResponseStatus(statusCode: refusal.status), refusal.code, refusal.message, close: refusal.close)
                reply.extraHeaders = refusal.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                if completesUpload { reply.extraHeaders.append(("Upload-Complete", "?1")) }
                return reply
            case .drain:
                let empty = await drainEmptyBody(&requests)
                action = machine.listDrained(hadBody: empty.map { !$0 })
            case .outbox(let request, let partner):
                return await answer(request, partner: partner, head: head, remote: remote)
            case .upload(let request, let partner, let limit):
                switch await answer(request, partner: partner, limit: limit, head: head, authorized: authorized, audit: audit, remote: remote, requests: &requests) {
                case .reply(let reply): return reply
                case .action(let next, let completes):
                    completesUpload = completes
                    action = next
                }
            case .options(let limit):
                return await answerOptions(limit: limit, requests: &requests)
            case .list(let partner):
                do {
                    let (store, limit) = (context.store, context.configuration.receiptListLimit)
                    return .receipts(try await context.threadPool.runIfActive { try store.receipts(partner: partner, limit: limit) })
                } catch {
                    return .error(.internalServerError, "storage", "the receipts cannot be read now")
                }
            case .receive(let reception):
                if let creation = reception.resumable, let authorized {
                    switch await createResumable(reception, creation, head: head, authorized: authorized, audit: audit, remote: remote, requests: &requests) {
                    case .reply(let reply): return reply
                    case .action(let next, let completes):
                        completesUpload = completes
                        action = next
                    }
                    continue
                }
                if reception.sendContinue { await sendContinue(head) }
                // The staged file is opened by the first write, and a small upload is written,
                // fsynced, committed and moved in one trip to the thread pool.
                let file = LazyStagedFile(
                    spool: context.spool, id: reception.id, direct: reception.direct,
                    flushSize: context.configuration.writeBufferSize,
                    threadPool: context.threadPool, eventLoop: connection.channel.eventLoop
                )
                staged = file
                action = await receiveBody(into: file, &machine, &requests)
            case .write, .settle:
                // Carried out inside `receiveBody`.
                action = machine.storageFailed(WharfError(.fileSystem, "the body's writes were not in order"))
            case .commit(var receipt):
                // Signed before the commit, so the signature is stored with the receipt.
                receipt.signature = signer.flatMap { try? $0.sign(ReceiptJSON(receipt).text) }
                guard let authorized, let staged else {
                    action = machine.commitEnded(.failed(WharfError(.fileSystem, "nothing was staged")))
                    continue
                }
                action = machine.commitEnded(await commit(receipt, file: .staged(staged), authorized: authorized, audit: audit))
            case .reply(let status, let receipt, let discardStaged):
                if discardStaged { await staged?.discard() }
                context.logger.info(status == 201 ? "upload accepted" : "upload replayed", metadata: [
                    "partner": "\(receipt.partner)", "file": "\(receipt.filename)", "size": "\(receipt.size)",
                    "sha256": "\(receipt.sha256)", "receipt": "\(receipt.id)", "remote": "\(remote)",
                    "duration": "\(Self.seconds(since: started))",
                ])
                context.instruments.uploadFinished(
                    partner: receipt.partner, outcome: status == 201 ? "accepted" : "replayed", bytes: receipt.size,
                    duration: ContinuousClock.now - started
                )
                var reply = HTTPReply.receipt(HTTPResponseStatus(statusCode: status), receipt)
                if completesUpload { reply.extraHeaders.append(("Upload-Complete", "?1")) }
                return reply
            case .abandon(let entry):
                await staged?.discard()
                if let entry {
                    await record(audit.event(entry))
                    context.logger.notice("upload abandoned", metadata: [
                        "partner": "\(entry.partner ?? "")", "reason": "\(entry.detail)", "remote": "\(remote)",
                    ])
                    context.instruments.uploadFinished(
                        partner: entry.partner, outcome: "abandoned", bytes: 0, duration: ContinuousClock.now - started
                    )
                }
                return .unwritten
            }
        }
    }

    /// One `notice` per refusal: status, code, the partner (or the presented subject when
    /// the certificate maps to none), the remote address and the reason.
    private func log(_ refusal: UploadStateMachine.Refusal, presented: PresentedCertificate?, remote: String) {
        var metadata: Logger.Metadata = [
            "status": "\(refusal.status)", "code": "\(refusal.code)", "remote": "\(remote)", "reason": "\(refusal.message)",
        ]
        if let partner = refusal.audit?.partner {
            metadata["partner"] = "\(partner)"
        } else {
            metadata["subject"] = "\(presented?.subjectText ?? "none")"
        }
        context.logger.notice("request refused", metadata: metadata)
    }

    /// Seconds since `start`, to the millisecond.
    static func seconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        return String(format: "%.3f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Streams the body into `file` while the machine allows it; returns what follows the
    /// body (a commit, once its digest is known) or the refusal that stopped it.
    private func receiveBody(
        into file: LazyStagedFile, _ machine: inout UploadStateMachine, _ requests: inout Requests
    ) async -> UploadStateMachine.Action {
        do {
            while let part = try await requests.next() {
                switch part {
                case .body(let chunk):
                    let action = machine.bodyChunk(chunk.readableBytes)
                    guard case .write = action else { return action }
                    try await file.append(chunk)
                case .end:
                    guard case .settle = machine.bodyEnded() else { return machine.storageFailed(WharfError(.fileSystem, "the body ended out of order")) }
                    try await file.settled()
                    return machine.digestKnown(file.sha256(), now: Date())
                case .head:
                    continue
                }
            }
            return machine.clientGone()
        } catch let error as WharfError {
            return machine.storageFailed(error)
        } catch let error as HTTPParserError where error != .invalidEOFState {
            return machine.malformedBody("\(error)")
        } catch {
            // Including the decoder's end-of-stream error: the connection closed mid-body.
            return machine.brokeOff(Self.reason(error))
        }
    }

    /// Where the file of a receipt about to be committed is.
    enum ReceivedFile {
        /// Staged in `tmp/`, still to be made durable.
        case staged(LazyStagedFile)
        /// A completed resumable upload's, durable in `partial/`.
        case partial(String)
    }

    /// Makes the staged file durable and commits its receipt while the partners are as they
    /// were when the upload was authorized (checked in the commit's own transaction), in one
    /// trip to the thread pool: a partner disabled or changed while the body arrived gets
    /// nothing stored. If they changed, the upload is decided again from the partners as
    /// they are now, and committed as of those. A resumable upload is forgotten once its
    /// receipt (or an earlier one, for a replay or a conflict of its `Idempotency-Key`)
    /// answers it.
    func commit(
        _ receipt: Receipt, file received: ReceivedFile, authorized: Authorized, audit: AuditTemplate
    ) async -> UploadStateMachine.CommitResult {
        let (store, spool) = (context.store, context.spool)
        do {
            return try await context.threadPool.runIfActive { () throws -> UploadStateMachine.CommitResult in
                let audited = { (commit: ReceiptCommit) in audit.event(UploadStateMachine.auditEntry(for: commit, name: receipt.filename)) }
                let staged: StagedFile? = if case .staged(let lazy) = received { try lazy.finish() } else { nil }
                var current = authorized
                for round in 1... {
                    let committed: ReceiptCommit?
                    switch received {
                    case .staged:
                        committed = try store.commit(receipt, whilePartnersAt: current.generation, audit: audited) {
                            try staged?.install(in: spool, receipt: receipt)
                        }
                    case .partial(let id):
                        committed = try store.commit(receipt, whilePartnersAt: current.generation, audit: audited) {
                            try spool.installPartial(id: id, receipt: receipt)
                        }
                        if committed != nil {
                            try store.removePartialUpload(id: id)
                            spool.removePartial(id: id)
                        }
                    }
                    if let committed { return .stored(committed) }
                    let now = try decideNow(current.presented)
                    if let refusal = UploadStateMachine.afterPartnersChanged(
                        partner: receipt.partner, size: receipt.size, filename: receipt.filename, now: Self.decision(now),
                        round: round, of: Self.commitRounds
                    ) {
                        return .objection(refusal)
                    }
                    // Accepted as before: commit again, as of the partners just read.
                    if case .success(let decided) = now { current = decided }
                }
                preconditionFailure("the rounds of a commit end with a receipt or a refusal")
            }
        } catch {
            return .failed(error as? WharfError ?? WharfError(.fileSystem, "\(error)"))
        }
    }

    /// How many commits an upload gets when the partners change under each: they would
    /// have to change between every decision and its commit to use them up.
    static let commitRounds = 3

    /// `100 Continue`, written on the event loop and only while the connection is open: a
    /// request that broke off meanwhile has closed it, and a 100 after that would go nowhere.
    func sendContinue(_ head: HTTPRequestHead) async {
        let channel = connection.channel
        let proceed = HTTPServerResponsePart.head(HTTPResponseHead(version: head.version, status: .continue))
        try? await channel.eventLoop.submit {
            if channel.isActive { channel.writeAndFlush(proceed, promise: nil) }
        }.get()
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

    private static func decision(_ result: Result<Authorized, Refusal>) -> UploadStateMachine.PartnerDecision {
        switch result {
        case .success(let current): .accepted(partner: current.partner.name.rawValue, uploadLimit: current.partner.uploadLimit)
        case .failure(let refusal): .refused(reason: refusal.reason)
        }
    }

    private func authorize(_ presented: PresentedCertificate?, rememberedIfUpload: Bool) async -> Result<Authorized, Refusal> {
        guard let presented else { return .failure(Refusal(reason: "no client certificate")) }
        if rememberedIfUpload, let owners = context.rememberedOwners.owners(of: presented.fingerprint),
           case .accepted(let partner) = InboundAuthorization.decide(presented, owners: owners.partners, revocations: owners.revocations, at: Date()) {
            return .success(Authorized(partner: partner, presented: presented, generation: owners.generation))
        }
        do {
            return try await context.threadPool.runIfActive { try decideNow(presented) }
        } catch {
            context.logger.error("registry lookup failed", metadata: ["error": "\(error)"])
            return .failure(Refusal(reason: "the registry cannot be read now"))
        }
    }

    /// Decides from the store as it is now, and remembers what it read. Blocking.
    private func decideNow(_ presented: PresentedCertificate) throws(WharfError) -> Result<Authorized, Refusal> {
        let owners = try context.store.owners(ofFingerprint: presented.fingerprint, subject: presented.subject, serial: presented.serial)
        context.rememberedOwners.remember(owners, for: presented.fingerprint)
        switch InboundAuthorization.decide(presented, owners: owners.partners, revocations: owners.revocations, at: Date()) {
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

    /// Consumes the rest of a request that should have no body; `false` if it had one, `nil`
    /// if the request stream failed or ended first.
    func drainEmptyBody(_ requests: inout Requests) async -> Bool? {
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
        // A 204 has neither (RFC 9110, 8.6); a HEAD is answered with the headers alone.
        let noContent = reply.status == .noContent
        if !noContent {
            headers.add(name: "Content-Type", value: reply.file == nil ? "application/json" : "application/octet-stream")
            headers.add(name: "Content-Length", value: String(reply.file.map { $0.range.count } ?? reply.body.count))
        }
        for (name, value) in reply.extraHeaders { headers.add(name: name, value: value) }
        headers.add(name: "Connection", value: reply.closeConnection ? "close" : "keep-alive")
        if noContent || request.method == .HEAD {
            if let file = reply.file { close(file.descriptor) }
            try await outbound.write(contentsOf: [
                .head(HTTPResponseHead(version: request.version, status: reply.status, headers: headers)), .end(nil),
            ])
            return
        }
        if let file = reply.file {
            do {
                try await outbound.write(.head(HTTPResponseHead(version: request.version, status: reply.status, headers: headers)))
            } catch {
                close(file.descriptor)
                throw error
            }
            // `stream` closes the file, whatever happens.
            try await stream(file, to: outbound)
            try await outbound.write(.end(nil))
            return
        }
        try await outbound.write(contentsOf: [
            .head(HTTPResponseHead(version: request.version, status: reply.status, headers: headers)),
            .body(.byteBuffer(ByteBuffer(bytes: reply.body))),
            .end(nil),
        ])
    }

    /// Answers a request head that is not valid HTTP/1.1 with `400` and a close.
    private func refuseMalformed(
        _ error: HTTPParserError, presented: PresentedCertificate?, remote: String, address: String, to outbound: Responses
    ) async throws {
        let message = "the request is not valid HTTP/1.1: \(error)"
        context.defender?.record(.malformedRequest, from: address)
        await recordRefusal(AuditTemplate(presented: presented, remote: remote).event(.refused, 400, partner: nil, detail: message), code: "bad_request", address: address)
        context.logger.notice("request refused", metadata: [
            "status": "400", "code": "bad_request", "remote": "\(remote)", "reason": "\(message)",
            "subject": "\(presented?.subjectText ?? "none")",
        ])
        var reply = HTTPReply.error(.badRequest, "bad_request", message, close: true)
        reply.closeConnection = true
        try await write(reply, for: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), to: outbound)
    }

    /// A refusal made before a partner is known: counted with the others from `address`
    /// and written in the next batch (or recorded now when the connection has no batch).
    private func recordRefusal(_ event: AuditEvent, code: String, address: String) async {
        if let refusals = context.refusals {
            refusals.add(event, address: address, code: code)
        } else {
            await record(event)
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

    /// The fixed word for why a connection ended before its first request.
    static func handshakeFailure(_ error: any Error) -> HandshakeFailure {
        if "\(error)".contains("OPENSSL_internal:") { return HandshakeFailure(openSSLReason: reason(error)) }
        if let error = error as? NIOSSLError, case .uncleanShutdown = error { return .closed }
        if let error = error as? ChannelError, [.eof, .ioOnClosedChannel, .alreadyClosed].contains(error) { return .closed }
        return .other
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

    func event(_ entry: UploadStateMachine.AuditEntry) -> AuditEvent {
        event(entry.outcome, entry.status, partner: entry.partner, detail: entry.detail)
    }
}

extension UploadStateMachine.Head {
    /// What the machine needs of NIO's request head.
    init(_ head: HTTPRequestHead) {
        self.init(
            method: head.method.rawValue,
            route: InboxRoute(method: head.method, uri: head.uri),
            contentLength: head.headers.first(name: "content-length"),
            chunked: head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" },
            hasTransferEncoding: head.headers.contains(name: "transfer-encoding"),
            contentDigest: head.headers.first(name: "content-digest"),
            idempotencyKey: head.headers.first(name: "idempotency-key"),
            expectContinue: head.headers.first(name: "expect")?.lowercased() == "100-continue",
            contentDisposition: head.headers.first(name: "content-disposition"),
            contentType: head.headers.first(name: "content-type"),
            unsupportedTransferEncoding: head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() != "chunked" },
            missingHost: head.version == .http1_1 && !head.headers.contains(name: "host"),
            uploadComplete: head.headers.first(name: "upload-complete"),
            uploadLength: head.headers.first(name: "upload-length"),
            uploadOffset: head.headers.first(name: "upload-offset"),
            reprDigest: head.headers.first(name: "repr-digest")
        )
    }
}
