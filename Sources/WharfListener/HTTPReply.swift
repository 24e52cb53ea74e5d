import Foundation
import NIOCore
import NIOHTTP1
import WharfCore

/// A response: status, JSON body, and whether the connection closes after it.
struct HTTPReply: Sendable {
    var status: HTTPResponseStatus
    var body: Data
    var extraHeaders: [(String, String)] = []
    var closeConnection = false
    /// Whether the reply is written at all. Not after the request stream failed or ended
    /// mid-body: the connection is broken, or NIO has already answered the malformed or
    /// cut-off request with a 400, and a second response would break HTTP's
    /// one-response-per-request order.
    var isWritten = true
    /// A file's bytes instead of `body`: open, and read from `range` as it is written.
    var file: FileBody?

    struct FileBody: @unchecked Sendable {
        /// Open for reading; the writer closes it.
        let descriptor: Int32
        let range: Range<Int64>
    }

    /// No reply; the connection is closed.
    static let unwritten = HTTPReply(status: .badRequest, body: Data(), closeConnection: true, isWritten: false)

    /// An error as `{"error": CODE, "message": TEXT}`.
    static func error(_ status: HTTPResponseStatus, _ code: String, _ message: String, close: Bool = false) -> HTTPReply {
        let body = try! JSONSerialization.data(withJSONObject: ["error": code, "message": message], options: [.sortedKeys, .withoutEscapingSlashes])
        return HTTPReply(status: status, body: body, closeConnection: close)
    }

    /// A receipt as its canonical JSON, with its signature (`Wharf-Receipt-Signature`: a
    /// JWS whose payload is exactly that body) when it has one.
    static func receipt(_ status: HTTPResponseStatus, _ receipt: Receipt) -> HTTPReply {
        var reply = HTTPReply(status: status, body: Data(ReceiptJSON(receipt).text.utf8))
        if let signature = receipt.signature { reply.extraHeaders = [("Wharf-Receipt-Signature", signature)] }
        return reply
    }

    static func receipts(_ receipts: [Receipt]) -> HTTPReply {
        let list = receipts.map { ReceiptJSON($0).text }.joined(separator: ",")
        return HTTPReply(status: .ok, body: Data("{\"receipts\":[\(list)]}".utf8))
    }
}

/// A file waiting in a pull partner's outbox, as `GET /outbox` lists it.
struct OutboxFileJSON {
    let transfer: Transfer

    var text: String {
        "{\"filename\":\(EscapedText.json(transfer.filename)),\"id\":\(EscapedText.json(transfer.id)),"
            + "\"queued_at\":\"\(transfer.queuedAt.utcTimestamp())\",\"sha256\":\(EscapedText.json(transfer.sha256)),\"size\":\(transfer.size)}"
    }
}

/// The receipt as partners see it.
struct ReceiptJSON: Encodable {
    let id: String
    let partner: String
    let filename: String
    let size: Int64
    let sha256: String
    let receivedAt: Date

    init(_ receipt: Receipt) {
        id = receipt.id
        partner = receipt.partner
        filename = receipt.filename
        size = receipt.size
        sha256 = receipt.sha256
        receivedAt = receipt.receivedAt
    }

    /// The receipt as JSON: keys sorted, the time in ISO 8601 to the second in UTC, slashes
    /// not escaped, as `JSONEncoder` writes it with those options (a test holds it to that).
    /// Written by hand since it answers every upload, and the encoder's date style reaches
    /// ICU's time-zone classes.
    var text: String {
        "{\"filename\":\(EscapedText.json(filename)),\"id\":\(EscapedText.json(id)),\"partner\":\(EscapedText.json(partner)),"
            + "\"received_at\":\"\(receivedAt.utcTimestamp())\",\"sha256\":\(EscapedText.json(sha256)),\"size\":\(size)}"
    }
}
