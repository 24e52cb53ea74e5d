import Crypto
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import WharfCore

/// The entry point of the inbox's fuzz target (`Sources/WharfInboxFuzz`): bytes from the
/// fuzzer are decoded as HTTP/1.1 requests by NIO's decoder, as the listener decodes them,
/// and each request is run through `UploadStateMachine` as an accepted partner's would be:
/// the route and file name, `Content-Length`, `Content-Digest`, `Idempotency-Key`,
/// `Content-Disposition`, the body against the limit and the digest, and the resumable
/// upload headers. It traps on what must never happen: a stored name that does not fit the
/// file system or leaves the partner's directory, a receipt of other bytes than the body's,
/// an append at another offset than the upload's.
@_spi(Fuzzing) public enum InboxRequestFuzzing {
    /// Returns how many of the requests got as far as a receipt.
    @discardableResult
    public static func run(_ bytes: UnsafeRawBufferPointer) -> Int {
        var receipts = 0
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        do {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            // Not HTTP: the listener answers 400 and closes; what was decoded before still runs.
        }
        var request: (machine: UploadStateMachine, action: UploadStateMachine.Action, body: SHA256, size: Int64)?
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head):
                var machine = UploadStateMachine(id: Receipt.newID(), directWriteThreshold: 1 << 20)
                var action = machine.headReceived(UploadStateMachine.Head(head))
                if case .decidePartner = action {
                    action = machine.partnerDecided(.accepted(partner: "acme", uploadLimit: 1 << 16))
                }
                checkResumable(action, head: UploadStateMachine.Head(head))
                request = (machine, action, SHA256(), 0)
            case .body(let chunk):
                guard var current = request, isReceiving(current.action) else { continue }
                current.action = current.machine.bodyChunk(chunk.readableBytes)
                current.body.update(data: Array(chunk.readableBytesView))
                current.size += Int64(chunk.readableBytes)
                request = current
            case .end:
                guard var current = request else { continue }
                request = nil
                guard isReceiving(current.action) else { continue }
                guard case .settle = current.machine.bodyEnded() else { continue }
                let sha256 = Hex.encode(current.body.finalize())
                guard case .commit(let receipt) = current.machine.digestKnown(sha256, now: Date()) else { continue }
                precondition(receipt.sha256 == sha256 && receipt.size == current.size, "a receipt of other bytes than the body's")
                precondition(receipt.storedName.utf8.count <= 255, "a stored name longer than a file name may be")
                precondition(!receipt.storedName.contains("/") && receipt.storedName != "." && receipt.storedName != "..", "a stored name outside the inbox")
                _ = current.machine.commitEnded(.stored(.committed(receipt)))
                receipts += 1
            }
        }
        return receipts
    }

    /// An upload of 100 bytes so far, of a file of 1,000, to append to.
    private static let held = PartialUpload(
        id: "u1", partner: "acme", filename: "a.xml", length: 1000, offset: 100, sha256: nil, idempotencyKey: nil,
        createdAt: Date(timeIntervalSince1970: 0)
    )

    /// What must hold of resumable uploads: a creation never states a length past the
    /// limit, and an append starts only at the upload's own offset, within its length, in
    /// the draft's media type; a 409 says the right offset.
    private static func checkResumable(_ action: UploadStateMachine.Action, head: UploadStateMachine.Head) {
        switch action {
        case .receive(let reception):
            if let length = reception.resumable?.length { precondition(length <= 1 << 16, "a resumable upload past the limit") }
        case .upload(.append, _, let limit):
            switch ResumableUpload.append(to: held, head: head, limit: limit, maxAge: .seconds(60)) {
            case .success(let append):
                precondition(ResumableUpload.integer(head.uploadOffset) == held.offset, "an append at another offset")
                precondition(append.length == held.length, "an append that changed the length")
                precondition(head.declaredLength.map { held.offset + $0 <= 1000 } ?? true, "an append past the length")
            case .failure(let refusal):
                if refusal.status == 409 { precondition(refusal.headers["Upload-Offset"] == "100", "a 409 without the right offset") }
            }
        default:
            break
        }
    }

    private static func isReceiving(_ action: UploadStateMachine.Action) -> Bool {
        switch action {
        case .receive, .write: true
        default: false
        }
    }
}
