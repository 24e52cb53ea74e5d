import Foundation
import NIOCore
import NIOHTTP1
import WharfCore
import WharfPKI

/// A pull partner's outbox: the files queued for it, fetched whole or by range, and
/// acknowledged once they arrived (which delivers the transfer).
extension InboxConnection {
    func answer(_ request: OutboxRequest, partner: String, head: HTTPRequestHead, remote: String) async -> HTTPReply {
        let (store, spool) = (context.store, context.spool)
        switch request {
        case .list(let limit, let after):
            do {
                let files = try await context.threadPool.runIfActive { try store.outbox(of: partner, after: after, limit: limit) }
                let list = files.map { OutboxFileJSON(transfer: $0).text }.joined(separator: ",")
                return HTTPReply(status: .ok, body: Data("{\"files\":[\(list)]}".utf8))
            } catch {
                return .error(.internalServerError, "storage", "the outbox cannot be read now")
            }

        case .fetch(let id):
            let waiting: Transfer?
            do {
                waiting = try await context.threadPool.runIfActive { try store.outboxTransfer(id: id, of: partner) }
            } catch {
                return .error(.internalServerError, "storage", "the outbox cannot be read now")
            }
            guard let transfer = waiting, !transfer.state.isFinal else { return Self.noFile(id) }
            let descriptor = open(spool.outgoingPath(id), O_RDONLY | O_CLOEXEC)
            var status = stat()
            guard descriptor >= 0, fstat(descriptor, &status) == 0, Int64(status.st_size) == transfer.size else {
                if descriptor >= 0 { close(descriptor) }
                context.logger.error("a queued file cannot be read", metadata: ["transfer": "\(id)", "partner": "\(partner)"])
                return .error(.internalServerError, "storage", "the file of \(id) cannot be read now; try again later")
            }
            let etag = "\"\(transfer.sha256)\""
            let whole = ContentDigest.header(sha256: Hex.decode(transfer.sha256))
            var reply = HTTPReply(status: .ok, body: Data())
            reply.extraHeaders = [
                ("ETag", etag), ("Accept-Ranges", "bytes"), ("Repr-Digest", whole),
                ("Content-Disposition", "attachment; filename*=UTF-8''\(Self.percentEncoded(transfer.filename))"),
            ]
            switch ByteRangeSelection(range: head.headers.first(name: "range"), ifRange: head.headers.first(name: "if-range"), etag: etag, size: transfer.size) {
            case .whole:
                reply.extraHeaders.append(("Content-Digest", whole))
                reply.file = HTTPReply.FileBody(descriptor: descriptor, range: 0..<transfer.size)
            case .part(let range):
                reply.status = .partialContent
                reply.extraHeaders.append(("Content-Range", "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(transfer.size)"))
                reply.file = HTTPReply.FileBody(descriptor: descriptor, range: range)
            case .unsatisfiable:
                close(descriptor)
                reply = .error(.rangeNotSatisfiable, "range_not_satisfiable", "the file has \(transfer.size) bytes")
                reply.extraHeaders = [("Content-Range", "bytes */\(transfer.size)")]
            }
            return reply

        case .acknowledge(let id):
            let acknowledged: Transfer?
            let signer = signer
            do {
                acknowledged = try await context.threadPool.runIfActive {
                    try store.acknowledge(id, of: partner, at: Date(), remoteAddress: remote) { transfer in
                        // The receipt of a pull delivery is its acknowledgement, signed.
                        let body = Self.acknowledgement(transfer)
                        return (body, signer.flatMap { try? $0.sign(body) })
                    } install: { transfer in
                        try spool.moveToSent(transfer, receipt: transfer.receipt ?? "")
                    }
                }
            } catch {
                context.logger.error("an acknowledgement was not recorded", metadata: ["transfer": "\(id)", "error": "\(error)"])
                return .error(.internalServerError, "storage", "the acknowledgement cannot be recorded now; send it again later")
            }
            guard let transfer = acknowledged, transfer.state == .delivered else { return Self.noFile(id) }
            context.instruments.deliveryAttempted(partner: partner, outcome: "delivered", duration: .zero)
            // Acknowledged now or before: the stored receipt, with its signature when it has one.
            // (Builds before v19 stored the JWS alone as the receipt.)
            let stored = transfer.receipt ?? Self.acknowledgement(transfer)
            let (body, signature): (String, String?) = stored.hasPrefix("{")
                ? (stored, transfer.receiptSignature)
                : ((try? ReceiptSignature.payload(of: stored)) ?? Self.acknowledgement(transfer), stored)
            var reply = HTTPReply(status: .ok, body: Data(body.utf8))
            if let signature { reply.extraHeaders = [("Wharf-Receipt-Signature", signature)] }
            return reply
        }
    }

    /// Writes `file`'s range in chunks read on the thread pool, then closes it.
    func stream(_ file: HTTPReply.FileBody, to outbound: Responses) async throws {
        defer { close(file.descriptor) }
        var position = file.range.lowerBound
        while position < file.range.upperBound {
            let count = Int(min(file.range.upperBound - position, 256 * 1024))
            let offset = position
            let chunk = try await context.threadPool.runIfActive { () throws -> ByteBuffer in
                var buffer = ByteBufferAllocator().buffer(capacity: count)
                let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
                    max(0, pread(file.descriptor, bytes.baseAddress, count, off_t(offset)))
                }
                guard read > 0 else { throw WharfError(.fileSystem, "the file ended before its size") }
                return buffer
            }
            position += Int64(chunk.readableBytes)
            try await outbound.write(.body(.byteBuffer(chunk)))
        }
    }

    /// The receipt of an acknowledged pull transfer, as canonical JSON (keys sorted).
    static func acknowledgement(_ transfer: Transfer) -> String {
        "{\"delivered_at\":\"\((transfer.deliveredAt ?? Date()).utcTimestamp())\",\"filename\":\(EscapedText.json(transfer.filename)),"
            + "\"id\":\(EscapedText.json(transfer.id)),\"partner\":\(EscapedText.json(transfer.partner)),"
            + "\"sha256\":\(EscapedText.json(transfer.sha256)),\"size\":\(transfer.size),\"state\":\"delivered\"}"
    }

    private static func noFile(_ id: String) -> HTTPReply {
        .error(.notFound, "not_found", "no file \(id) waits in this outbox")
    }

    /// `filename*`'s value (RFC 8187): UTF-8, every byte outside the unreserved set percent-encoded.
    static func percentEncoded(_ name: String) -> String {
        name.utf8.map { byte in
            let unreserved = (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
                || [0x2d, 0x2e, 0x5f, 0x7e].contains(byte)
            return unreserved ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte)
        }.joined()
    }
}

/// What a `Range` header (RFC 9110, section 14) asks of a file: one range of bytes, or
/// the whole file when it asks for none Wharf serves (another unit, several ranges, a
/// malformed one, or an `If-Range` that no longer matches).
enum ByteRangeSelection: Equatable {
    case whole
    case part(Range<Int64>)
    case unsatisfiable

    init(range header: String?, ifRange: String?, etag: String, size: Int64) {
        guard let header else { self = .whole; return }
        if let ifRange, ifRange.trimmingCharacters(in: .whitespaces) != etag { self = .whole; return }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes="), !text.contains(",") else { self = .whole; return }
        let bounds = text.dropFirst("bytes=".count).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard bounds.count == 2, bounds.allSatisfy({ $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }) else { self = .whole; return }
        if bounds[0].isEmpty {
            // The last N bytes.
            guard let suffix = Int64(bounds[1]) else { self = .whole; return }
            self = suffix == 0 || size == 0 ? .unsatisfiable : .part(max(0, size - suffix)..<size)
            return
        }
        guard let first = Int64(bounds[0]) else { self = .whole; return }
        let last = bounds[1].isEmpty ? Int64.max - 1 : Int64(bounds[1]) ?? Int64.max - 1
        guard last >= first else { self = .whole; return }
        guard first < size else { self = .unsatisfiable; return }
        self = .part(first..<(min(last, size - 1) + 1))
    }
}
