/// The rows of one registry table, as one store exports them for another: how `wharf db
/// copy` moves a home's SQLite registry into PostgreSQL column for column.
public struct TableRows: Sendable, Equatable {
    /// A stored value as SQLite keeps it; the importing store converts it to its column's
    /// type (a time's text to a timestamp, `0`/`1` to a boolean).
    public enum Value: Sendable, Equatable {
        case null
        case integer(Int64)
        case real(Double)
        case text(String)
    }

    public let table: String
    public let columns: [String]
    public var rows: [[Value]]

    public init(table: String, columns: [String], rows: [[Value]]) {
        self.table = table
        self.columns = columns
        self.rows = rows
    }

    /// Every table a copy moves, in an order that inserts what a row refers to first.
    public static let copied = [
        "partner", "partner_identity", "partner_pin", "receipt", "transfer", "delivery_attempt", "schedule", "schedule_sent",
        "audit_event", "audit_anchor", "address_ban", "revoked_certificate", "issued_certificate", "hook", "hook_event",
        "partial_upload",
    ]
}
