import Foundation

/// A resumable upload not yet complete (draft-ietf-httpbis-resumable-upload-15): its
/// bytes so far are in `spool/partial/{id}.part`, and `offset` is how many of them are
/// durable and were or may be reported to the partner. Its id becomes the receipt's id
/// when the upload completes.
public struct PartialUpload: Sendable, Equatable {
    public var id: String
    public var partner: String
    public var filename: String
    /// The whole file's length, once the partner said it (`Upload-Length`, or the last
    /// request's `Content-Length` with `Upload-Complete: ?1`).
    public var length: Int64?
    /// Bytes fsynced and recorded; never decreases.
    public var offset: Int64
    /// The SHA-256 (hex) the whole file must have, when the creation request declared one
    /// (`Repr-Digest`, or a `Content-Digest` there).
    public var sha256: String?
    public var idempotencyKey: String?
    public var createdAt: Date
    /// When bytes were last recorded: an upload untouched for the maximum age is removed.
    public var updatedAt: Date

    public init(
        id: String, partner: String, filename: String, length: Int64?, offset: Int64 = 0, sha256: String?,
        idempotencyKey: String?, createdAt: Date, updatedAt: Date? = nil
    ) {
        self.id = id
        self.partner = partner
        self.filename = filename
        self.length = length
        self.offset = offset
        self.sha256 = sha256
        self.idempotencyKey = idempotencyKey
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    /// Whether the upload was left untouched for longer than `maximumAge` at `now`.
    public func isAbandoned(maximumAge: Duration, at now: Date) -> Bool {
        now.timeIntervalSince(updatedAt) > Double(maximumAge.components.seconds) + Double(maximumAge.components.attoseconds) / 1e18
    }
}
