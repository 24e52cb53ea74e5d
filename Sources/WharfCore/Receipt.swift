import Foundation

/// What Wharf acknowledges for a file it received and stored durably.
public struct Receipt: Sendable, Equatable, Codable {
    public let id: String
    public let partner: String
    public let filename: String
    /// The name the file has in `spool/inbox/PARTNER/`.
    public let storedName: String
    public let size: Int64
    /// SHA-256 of the content, lower-case hex.
    public let sha256: String
    public let receivedAt: Date
    public let idempotencyKey: String?
    /// The JWS of the receipt's canonical JSON made with Wharf's server key, as answered in
    /// `Wharf-Receipt-Signature`; `nil` for receipts from before signing.
    public var signature: String?

    public init(
        id: String, partner: String, filename: String, storedName: String, size: Int64,
        sha256: String, receivedAt: Date, idempotencyKey: String?, signature: String? = nil
    ) {
        self.signature = signature
        self.id = id
        self.partner = partner
        self.filename = filename
        self.storedName = storedName
        self.size = size
        self.sha256 = sha256
        self.receivedAt = receivedAt
        self.idempotencyKey = idempotencyKey
    }

    /// A new receipt id: the UTC time to the second, then 8 random hex digits, so ids
    /// sort by arrival and never collide in practice (`20261129T101500Z-3f9a2c1b`).
    public static func newID(at date: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = String(generator.next() & 0xffff_ffff, radix: 16)
        let padded = String(repeating: "0", count: 8 - random.count) + random
        return "\(date.utcTimestamp(compact: true))-\(padded)"
    }
}

/// One line of the audit trail: an upload accepted or refused, a handshake that failed, a
/// delivery attempt's outcome, or a change an operator made with the CLI.
///
/// Every event carries the SHA-256 of the event before it and of its own canonical content
/// (`previousHash`, `hash`; set by the store), so that an event modified, deleted or moved
/// breaks the chain `wharf audit verify` walks.
public struct AuditEvent: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable, CaseIterable {
        case accepted
        case replayed
        case refused
        /// An operator's change.
        case changed
        case delivered
        case retrying
        case dead
    }

    /// What the event is about.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// An upload accepted or replayed.
        case upload
        /// A connection, request or upload refused.
        case refusal
        /// A change made through the CLI.
        case admin
        /// A delivery attempt's outcome.
        case delivery
    }

    public let at: Date
    public let kind: Kind
    public let outcome: Outcome
    /// The HTTP status answered, when the request got that far.
    public let status: Int?
    public let partner: String?
    /// The presented certificate's subject, when there was one.
    public let subject: String?
    public let fingerprint: String?
    public let remoteAddress: String?
    /// A short reason or the file name.
    public let detail: String?
    /// For admin events: the operating-system user who ran the command.
    public let actor: String?
    /// For admin events: the command, such as `partner disable`.
    public let command: String?
    /// Set by the store: its position, and the chain's hashes.
    public var id: Int64?
    public var previousHash: String?
    public var hash: String?

    public init(
        at: Date = Date(), kind: Kind? = nil, outcome: Outcome, status: Int?, partner: String?, subject: String?,
        fingerprint: String?, remoteAddress: String?, detail: String?, actor: String? = nil, command: String? = nil
    ) {
        self.at = at
        self.kind = kind ?? (outcome == .refused ? .refusal : .upload)
        self.outcome = outcome
        self.status = status
        self.partner = partner
        self.subject = subject
        self.fingerprint = fingerprint
        self.remoteAddress = remoteAddress
        self.detail = detail
        self.actor = actor
        self.command = command
    }
}

extension AuditEvent {
    /// The audit event of a delivery attempt's outcome, as every store records it.
    public static func delivery(_ transfer: Transfer, outcome: AttemptOutcome, status: Int?) -> AuditEvent {
        let (recorded, detail): (AuditEvent.Outcome, String) = switch outcome {
        case .delivered: (.delivered, "\(transfer.id) \(transfer.filename): \(transfer.size) bytes")
        case .retry(_, let reason): (.retrying, "\(transfer.id) \(transfer.filename): \(reason)")
        case .dead(let reason): (.dead, "\(transfer.id) \(transfer.filename): \(reason)")
        }
        return AuditEvent(
            kind: .delivery, outcome: recorded, status: status, partner: transfer.partner, subject: nil, fingerprint: nil,
            remoteAddress: nil, detail: detail
        )
    }
}
