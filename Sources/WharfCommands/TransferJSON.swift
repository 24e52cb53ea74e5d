import Foundation
import WharfCore

/// A transfer as `--json` prints it: the receiver's answer (a Wharf receipt, say) as JSON
/// when it is JSON, as a string otherwise.
struct TransferJSON: Encodable {
    let id: String
    let partner: String
    let filename: String
    let size: Int64
    let sha256: String
    let state: Transfer.State
    let attempts: Int
    let createdAt: Date
    let queuedAt: Date
    let nextAttemptAt: Date?
    let lastError: String?
    let receipt: JSONValue?
    let receiptSignature: String?
    let deliveredAt: Date?

    init(_ transfer: Transfer) {
        id = transfer.id
        partner = transfer.partner
        filename = transfer.filename
        size = transfer.size
        sha256 = transfer.sha256
        state = transfer.state
        attempts = transfer.attempts
        createdAt = transfer.createdAt
        queuedAt = transfer.queuedAt
        nextAttemptAt = transfer.nextAttemptAt
        lastError = transfer.lastError
        receipt = transfer.receipt.flatMap { $0.isEmpty ? nil : JSONValue(parsingOrQuoting: $0) }
        receiptSignature = transfer.receiptSignature
        deliveredAt = transfer.deliveredAt
    }
}

/// Any JSON value, to pass text from elsewhere through as JSON.
enum JSONValue: Codable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// `text` parsed as JSON, or `text` as a JSON string when it is not JSON.
    init(parsingOrQuoting text: String) {
        self = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .string(text)
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
