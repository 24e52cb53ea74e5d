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
    /// Whether the reply is written at all. Not after the request stream failed: the
    /// connection is broken, or NIO has already answered the malformed request with a 400,
    /// and a second response would break HTTP's one-response-per-request order.
    var isWritten = true

    /// No reply; the connection is closed.
    static let unwritten = HTTPReply(status: .badRequest, body: Data(), closeConnection: true, isWritten: false)

    /// An error as `{"error": CODE, "message": TEXT}`.
    static func error(_ status: HTTPResponseStatus, _ code: String, _ message: String, close: Bool = false) -> HTTPReply {
        let body = try! JSONSerialization.data(withJSONObject: ["error": code, "message": message], options: [.sortedKeys, .withoutEscapingSlashes])
        return HTTPReply(status: status, body: body, closeConnection: close)
    }

    static func json(_ status: HTTPResponseStatus, _ value: some Encodable) -> HTTPReply {
        HTTPReply(status: status, body: try! ReceiptJSON.encoder.encode(value))
    }
}

/// The receipt as partners see it.
struct ReceiptJSON: Codable {
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

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

struct ReceiptListJSON: Codable {
    let receipts: [ReceiptJSON]
}
