import Foundation
import NIOCore
import NIOHTTP1
import WharfCore
import WharfSpool

/// Resumable uploads (draft-ietf-httpbis-resumable-upload-15), carried out as
/// `ResumableUpload` decides: creation by an upload carrying `Upload-Complete`, `HEAD`,
/// `PATCH` and `DELETE` of `/uploads/{id}`, and `OPTIONS`.
///
/// The offset a response reports is always one the registry recorded after an fsync, and
/// one request at a time holds an upload (`ActiveUploads`). A completed upload is
/// committed like any other (the same receipt, signature, audit event and hooks) and its
/// file renamed from `spool/partial/` into the inbox.
extension InboxConnection {
    /// What a resumable request ends in: an answer of its own, or an action of the upload
    /// state machine (a receipt or a refusal) that `handle` carries out; `completes` when it
    /// is the final answer of the request that completed the upload.
    enum ResumableOutcome {
        case reply(HTTPReply)
        case action(UploadStateMachine.Action, completes: Bool = false)
    }

    /// How the body of a creation or append request ended.
    private enum BodyEnd {
        case ended
        case overLimit
        case overLength(Int64)
        case brokeOff(String)
        case malformed(String)
        case failed(WharfError)
    }

    private var maxAge: Duration { context.configuration.partialUploadMaxAge }

    // MARK: Creation

    /// An upload carrying `Upload-Complete`: records it, announces it with `104` and its
    /// `Location`, and receives its first part.
    func createResumable(
        _ reception: UploadStateMachine.Reception, _ creation: ResumableUpload.Creation, head: HTTPRequestHead,
        authorized: Authorized, audit: AuditTemplate, remote: String, requests: inout Requests
    ) async -> ResumableOutcome {
        let partner = authorized.partner
        let upload = PartialUpload(
            id: reception.id, partner: partner.name.rawValue, filename: reception.filename, length: creation.length,
            sha256: creation.wholeSHA256, idempotencyKey: reception.idempotencyKey, createdAt: Date()
        )
        let (store, spool) = (context.store, context.spool)
        do {
            try await context.threadPool.runIfActive {
                try spool.createPartial(id: upload.id)
                do {
                    try store.createPartialUpload(upload)
                } catch {
                    spool.removePartial(id: upload.id)
                    throw error
                }
            }
        } catch {
            return .action(.refuse(UploadStateMachine.storageRefusal(Self.wharfError(error), partner: upload.partner, filename: upload.filename)))
        }
        let lease = await context.activeUploads.acquire(upload.id, on: connection.channel)
        defer { context.activeUploads.release(lease) }
        await sendInterim(head, headers: [
            ("Location", ResumableUpload.location(upload.id)),
            ("Upload-Limit", ResumableUpload.limits(maxSize: partner.uploadLimit, maxAge: maxAge)),
        ])
        if reception.sendContinue { await sendContinue(head) }
        let plan = ResumableUpload.Append(complete: creation.complete, length: creation.length, partSHA256: creation.partSHA256)
        return await receive(
            into: upload, plan: plan, limit: partner.uploadLimit, authorized: authorized, audit: audit, remote: remote,
            creating: true, requests: &requests
        )
    }

    // MARK: /uploads/{id}

    func answer(
        _ request: UploadRequest, partner: String, limit: Int64, head: HTTPRequestHead, authorized: Authorized?,
        audit: AuditTemplate, remote: String, requests: inout Requests
    ) async -> ResumableOutcome {
        guard let authorized else { return .reply(.unwritten) }
        if case .append = request {} else {
            switch await drainEmptyBody(&requests) {
            case nil: return .reply(.unwritten)
            case false?: return .reply(.error(.badRequest, "unexpected_body", "this request takes no body", close: true))
            case true?: break
            }
        }
        let id = request.id
        let lease = await context.activeUploads.acquire(id, on: connection.channel)
        defer { context.activeUploads.release(lease) }
        let found: Found
        do {
            found = try await find(id, partner: partner)
        } catch {
            return .reply(.error(.internalServerError, "storage", "the upload cannot be read now; try again later"))
        }
        switch (request, found) {
        case (_, .none):
            return .reply(Self.noUpload(id))

        case (.offset, .partial(let upload)):
            var headers = [
                ("Upload-Offset", String(upload.offset)), ("Upload-Complete", "?0"),
                ("Upload-Limit", ResumableUpload.limits(maxSize: limit, maxAge: maxAge, lastTouched: upload.updatedAt)),
                ("Cache-Control", "no-store"),
            ]
            if let length = upload.length { headers.insert(("Upload-Length", String(length)), at: 1) }
            return .reply(Self.noContent(headers))
        case (.offset, .completed(let receipt)):
            return .reply(Self.noContent([
                ("Upload-Offset", String(receipt.size)), ("Upload-Length", String(receipt.size)), ("Upload-Complete", "?1"),
                ("Cache-Control", "no-store"),
            ]))

        case (.cancel, .partial(let upload)):
            let (store, spool) = (context.store, context.spool)
            do {
                try await context.threadPool.runIfActive {
                    try store.removePartialUpload(id: upload.id)
                    spool.removePartial(id: upload.id)
                }
            } catch {
                return .reply(.error(.internalServerError, "storage", "the upload cannot be removed now; try again later"))
            }
            context.logger.info("resumable upload cancelled", metadata: [
                "partner": "\(partner)", "upload": "\(id)", "file": "\(upload.filename)", "offset": "\(upload.offset)", "remote": "\(remote)",
            ])
            return .reply(Self.noContent([]))
        case (.cancel, .completed):
            return .reply(.error(.badRequest, "upload_complete", "upload \(id) is complete and was received as receipt \(id); it cannot be cancelled"))

        case (.append, .completed):
            var reply = HTTPReply.error(.badRequest, "upload_complete", "upload \(id) is complete (receipt \(id)); nothing can be appended", close: true)
            reply.extraHeaders = [("Upload-Complete", "?1")]
            return .reply(reply)
        case (.append, .partial(let upload)):
            let plan: ResumableUpload.Append
            switch ResumableUpload.append(to: upload, head: UploadStateMachine.Head(head), limit: limit, maxAge: maxAge) {
            case .failure(var refusal):
                // A file that cannot fit the limit never will: the upload goes, as the draft allows.
                if refusal.status == 413 { await remove(upload.id) }
                refusal.audit = UploadStateMachine.AuditEntry(
                    outcome: .refused, status: refusal.status, partner: partner, detail: "\(upload.filename) (upload \(id)): \(refusal.message)"
                )
                refusal.confirmPartner = true
                return .action(.refuse(refusal))
            case .success(let decided):
                plan = decided
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" { await sendContinue(head) }
            return await receive(
                into: upload, plan: plan, limit: limit, authorized: authorized, audit: audit, remote: remote, creating: false,
                requests: &requests
            )
        }
    }

    /// `OPTIONS`: uploads here may resume, within these limits.
    func answerOptions(limit: Int64, requests: inout Requests) async -> HTTPReply {
        switch await drainEmptyBody(&requests) {
        case nil: return .unwritten
        case false?: return .error(.badRequest, "unexpected_body", "this request takes no body", close: true)
        case true?: return Self.noContent([
            ("Allow", "GET, POST, PUT, OPTIONS"), ("Accept-Patch", ResumableUpload.mediaType),
            ("Upload-Limit", ResumableUpload.limits(maxSize: limit, maxAge: maxAge)),
        ])
        }
    }

    // MARK: Receiving a part

    /// Appends the request's content to `upload` (at its recorded offset) and answers:
    /// completes it if the request says it is the last part, else records the new offset.
    /// A request that breaks off keeps what arrived: it is fsynced and recorded, so the
    /// partner resumes from there.
    private func receive(
        into upload: PartialUpload, plan: ResumableUpload.Append, limit: Int64, authorized: Authorized, audit: AuditTemplate,
        remote: String, creating: Bool, requests: inout Requests
    ) async -> ResumableOutcome {
        let (store, spool) = (context.store, context.spool)
        let file: PartialFile
        do {
            file = try await context.threadPool.runIfActive { try spool.openPartial(id: upload.id, at: upload.offset) }
        } catch {
            // Its bytes are gone (removed by hand): the draft says such an upload is deactivated.
            context.logger.error("a resumable upload lost its file", metadata: ["upload": "\(upload.id)", "error": "\(error)"])
            try? await context.threadPool.runIfActive { try store.removePartialUpload(id: upload.id) }
            return .reply(.error(.gone, "upload_lost", "upload \(upload.id) can no longer be resumed; send the file again", close: true))
        }
        let appender = PartialAppender(file: file, threadPool: context.threadPool, flushSize: context.configuration.writeBufferSize)
        let outcome = await receive(
            into: upload, appender: appender, plan: plan, limit: limit, authorized: authorized, audit: audit, remote: remote,
            creating: creating, requests: &requests
        )
        await appender.close()
        return outcome
    }

    private func receive(
        into upload: PartialUpload, appender: PartialAppender, plan: ResumableUpload.Append, limit: Int64, authorized: Authorized,
        audit: AuditTemplate, remote: String, creating: Bool, requests: inout Requests
    ) async -> ResumableOutcome {
        let store = context.store
        var end = BodyEnd.brokeOff("the client disconnected")
        do {
            reading: while let part = try await requests.next() {
                switch part {
                case .body(let chunk):
                    let total = upload.offset + appender.received + Int64(chunk.readableBytes)
                    if total > limit {
                        end = .overLimit
                        break reading
                    }
                    if let length = plan.length, total > length {
                        end = .overLength(length)
                        break reading
                    }
                    try await appender.append(chunk)
                case .end:
                    end = .ended
                    break reading
                case .head:
                    continue
                }
            }
        } catch let error as WharfError {
            end = .failed(error)
        } catch let error as HTTPParserError where error != .invalidEOFState {
            end = .malformed("\(error)")
        } catch {
            end = .brokeOff(Self.reason(error))
        }

        let filename = upload.filename
        switch end {
        case .overLimit, .overLength:
            // The draft: an upload past its limit or its length is deactivated.
            await remove(upload.id)
            var refusal = if case .overLength(let length) = end {
                ResumableUpload.refusal(400, "inconsistent_length", "the content passed the upload's length of \(length) bytes; the upload is removed")
            } else {
                ResumableUpload.tooLarge(nil, limit: limit, maxAge: maxAge)
            }
            refusal.audit = UploadStateMachine.AuditEntry(outcome: .refused, status: refusal.status, partner: upload.partner, detail: "\(filename): \(refusal.message)")
            refusal.confirmPartner = true
            return .action(.refuse(refusal))
        case .failed(let error):
            // Nothing new is recorded: the bytes past the offset are cut off when the upload
            // is opened again.
            return .action(.refuse(UploadStateMachine.storageRefusal(error, partner: upload.partner, filename: filename)))
        case .malformed(let reason):
            var refusal = ResumableUpload.refusal(400, "bad_request", "the body is not valid HTTP/1.1: \(reason); resume from the offset a HEAD reports")
            refusal.audit = UploadStateMachine.AuditEntry(outcome: .refused, status: 400, partner: upload.partner, detail: "\(filename): \(refusal.message)")
            return .action(.refuse(refusal))
        case .brokeOff(let reason):
            let offset = try? await appender.durable()
            if let offset {
                try? await context.threadPool.runIfActive { try store.recordPartialUpload(id: upload.id, offset: offset, length: plan.length, at: Date()) }
            }
            context.logger.notice("resumable upload interrupted", metadata: [
                "partner": "\(upload.partner)", "upload": "\(upload.id)", "file": "\(filename)",
                "offset": "\(offset.map(String.init) ?? "unchanged")", "reason": "\(reason)", "remote": "\(remote)",
            ])
            return .action(.abandon(nil))
        case .ended:
            break
        }

        let offset: Int64
        let content = appender.contentSHA256()
        do {
            offset = try await appender.durable()
            if let expected = plan.partSHA256, expected != content {
                try await appender.rollBack()
                var refusal = ResumableUpload.refusal(
                    400, "digest_mismatch",
                    "this request's content does not match its Content-Digest; nothing of it was kept, so append again from offset \(upload.offset)"
                )
                refusal.close = false
                refusal.headers["Upload-Offset"] = String(upload.offset)
                refusal.audit = UploadStateMachine.AuditEntry(outcome: .refused, status: 400, partner: upload.partner, detail: "\(filename): \(refusal.message)")
                return .action(.refuse(refusal))
            }
            if !plan.complete {
                try await context.threadPool.runIfActive { try store.recordPartialUpload(id: upload.id, offset: offset, length: plan.length, at: Date()) }
            }
        } catch {
            return .action(.refuse(UploadStateMachine.storageRefusal(Self.wharfError(error), partner: upload.partner, filename: filename)))
        }
        guard plan.complete else {
            var headers = [
                ("Upload-Complete", "?0"), ("Upload-Offset", String(offset)),
                ("Upload-Limit", ResumableUpload.limits(maxSize: limit, maxAge: maxAge)),
            ]
            if let length = plan.length { headers.append(("Upload-Length", String(length))) }
            guard creating else { return .reply(Self.noContent(headers)) }
            headers.insert(("Location", ResumableUpload.location(upload.id)), at: 0)
            var reply = HTTPReply(status: .created, body: Data(
                "{\"location\":\(EscapedText.json(ResumableUpload.location(upload.id))),\"offset\":\(offset),\"upload\":\(EscapedText.json(upload.id))}".utf8
            ))
            reply.extraHeaders = headers
            return .reply(reply)
        }
        if let length = plan.length, offset != length {
            await remove(upload.id)
            return .action(.refuse(ResumableUpload.refusal(
                400, "inconsistent_length", "the upload ended at \(offset) bytes, not at its length of \(length) bytes; the upload is removed"
            )), completes: true)
        }
        // A request that carried the whole file hashed all of it on the way in.
        return await complete(upload, size: offset, sha256: upload.offset == 0 ? content : nil, authorized: authorized, audit: audit)
    }

    // MARK: Completion

    /// Hashes the whole file from the disk, checks the digest declared at creation, and
    /// commits the receipt (moving the file into the inbox) as any upload's.
    private func complete(
        _ upload: PartialUpload, size: Int64, sha256 known: String?, authorized: Authorized, audit: AuditTemplate
    ) async -> ResumableOutcome {
        let spool = context.spool
        let sha256: String
        do {
            if let known {
                sha256 = known
            } else {
                sha256 = try await context.threadPool.runIfActive { try spool.partialSHA256(id: upload.id, length: size) }
            }
        } catch {
            return .action(.refuse(UploadStateMachine.storageRefusal(Self.wharfError(error), partner: upload.partner, filename: upload.filename)), completes: true)
        }
        if let declared = upload.sha256, declared != sha256 {
            await remove(upload.id)
            var refusal = UploadStateMachine.uploadRefusal(
                400, "digest_mismatch", "the file's SHA-256 is \(sha256), not the one declared when the upload was created; the upload is removed",
                partner: upload.partner, filename: upload.filename
            )
            refusal.close = false
            return .action(.refuse(refusal), completes: true)
        }
        var receipt = Receipt(
            id: upload.id, partner: upload.partner, filename: upload.filename,
            storedName: Spool.storedName(id: upload.id, filename: upload.filename), size: size, sha256: sha256,
            receivedAt: Date(), idempotencyKey: upload.idempotencyKey
        )
        receipt.signature = signer.flatMap { try? $0.sign(ReceiptJSON(receipt).text) }
        let result = await commit(receipt, file: .partial(upload.id), authorized: authorized, audit: audit)
        return .action(UploadStateMachine.outcome(of: result, partner: upload.partner, filename: upload.filename), completes: true)
    }

    // MARK: Helpers

    private enum Found {
        case none
        case partial(PartialUpload)
        /// Completed: its receipt.
        case completed(Receipt)
    }

    /// The partner's upload `id`: in progress, completed, or none (another partner's, or
    /// one past its maximum age, which is removed now).
    private func find(_ id: String, partner: String) async throws -> Found {
        let (store, spool, maxAge) = (context.store, context.spool, maxAge)
        return try await context.threadPool.runIfActive { () throws -> Found in
            // A receipt first: once one is committed the upload is complete, even while its
            // record waits to be removed.
            if let receipt = try store.receipt(id: id) { return receipt.partner == partner ? .completed(receipt) : .none }
            if let upload = try store.partialUpload(id: id) {
                guard upload.partner == partner else { return .none }
                guard !upload.isAbandoned(maximumAge: maxAge, at: Date()) else {
                    try store.removePartialUpload(id: id)
                    spool.removePartial(id: id)
                    return .none
                }
                return .partial(upload)
            }
            return .none
        }
    }

    /// Forgets an upload and removes its file.
    private func remove(_ id: String) async {
        let (store, spool) = (context.store, context.spool)
        do {
            try await context.threadPool.runIfActive {
                try store.removePartialUpload(id: id)
                spool.removePartial(id: id)
            }
        } catch {
            context.logger.error("a resumable upload could not be removed", metadata: ["upload": "\(id)", "error": "\(error)"])
        }
    }

    /// A `104 (Upload Resumption Supported)`, written while the connection is open.
    private func sendInterim(_ head: HTTPRequestHead, headers: [(String, String)]) async {
        let channel = connection.channel
        let interim = HTTPServerResponsePart.head(HTTPResponseHead(
            version: head.version, status: .custom(code: 104, reasonPhrase: "Upload Resumption Supported"), headers: HTTPHeaders(headers)
        ))
        try? await channel.eventLoop.submit {
            if channel.isActive { channel.writeAndFlush(interim, promise: nil) }
        }.get()
    }

    private static func noContent(_ headers: [(String, String)]) -> HTTPReply {
        var reply = HTTPReply(status: .noContent, body: Data())
        reply.extraHeaders = headers
        return reply
    }

    private static func noUpload(_ id: String) -> HTTPReply {
        .error(.notFound, "not_found", "this partner has no upload \(id) in progress (it may have completed, been cancelled or expired)", close: true)
    }

    static func wharfError(_ error: any Error) -> WharfError {
        error as? WharfError ?? WharfError(.fileSystem, "\(error)")
    }
}
