import Foundation
import PostgresNIO
import WharfCore

/// The audit trail on the shared registry: the same hash chain as SQLite's (`AuditChain`),
/// appended under one lock by every node, so it has one order.
extension PostgresStore: AuditTrail {
    public func record(_ event: AuditEvent) throws(WharfError) {
        try record(contentsOf: [event])
    }

    public func record(contentsOf events: [AuditEvent]) throws(WharfError) {
        guard !events.isEmpty else { return }
        try transaction { connection in
            for event in events { try await Self.insert(event, connection) }
        }
    }

    public func auditEvents(limit: Int) throws(WharfError) -> [AuditEvent] {
        try withConnection { connection in
            var events: [AuditEvent] = []
            for try await row in try await connection.query("SELECT * FROM audit_event ORDER BY id DESC LIMIT \(limit)", logger: Self.quiet) {
                events.append(try Self.auditEvent(from: row))
            }
            return events
        }
    }

    /// Walks the chain from the first event to the last; returns how many it checked, or
    /// throws naming the first event that was changed, or after which one was removed.
    /// With `head`, the chain must end there (catches events removed from the end).
    public func verifyAudit(head expected: String? = nil) throws(WharfError) -> Int {
        let checked: (count: Int, last: String) = try withConnection { connection in
            var previous = ""
            for try await hash in try await connection.query("SELECT last_pruned_hash FROM audit_anchor WHERE id = 1", logger: Self.quiet).decode(String.self) {
                previous = hash
            }
            var count = 0
            for try await row in try await connection.query("SELECT * FROM audit_event ORDER BY id", logger: Self.quiet) {
                let event = try Self.auditEvent(from: row)
                let id = event.id ?? 0
                guard event.previousHash == previous else {
                    throw WharfError(
                        .conflict, "the audit trail is broken at event \(id): an event before it was removed, changed or moved",
                        fix: "restore the database from a backup"
                    )
                }
                let recomputed = AuditChain.hash(previous: previous, canonical: AuditChain.canonical(event, at: event.at.registryText))
                guard recomputed == event.hash else {
                    throw WharfError(
                        .conflict, "the audit trail is broken at event \(id): its content is not what was recorded",
                        fix: "restore the database from a backup; the event was edited after it was written"
                    )
                }
                previous = recomputed
                count += 1
            }
            return (count, previous)
        }
        if let expected, checked.last != expected {
            throw WharfError(
                .conflict, "the audit trail ends at \(checked.last.isEmpty ? "nothing" : checked.last), not at the head \(expected)",
                fix: "events were removed from its end (or the head is of another home); restore from a backup"
            )
        }
        return checked.count
    }

    static func auditEvent(from row: PostgresRow) throws -> AuditEvent {
        let row = row.makeRandomAccess()
        var event = AuditEvent(
            at: try row["at"].decode(Millis.self).date, kind: AuditEvent.Kind(rawValue: try row["kind"].decode(String.self)) ?? .refusal,
            outcome: AuditEvent.Outcome(rawValue: try row["outcome"].decode(String.self)) ?? .refused,
            status: try row["status"].decode(Int?.self), partner: try row["partner"].decode(String?.self),
            subject: try row["subject"].decode(String?.self), fingerprint: try row["fingerprint"].decode(String?.self),
            remoteAddress: try row["remote_address"].decode(String?.self), detail: try row["detail"].decode(String?.self),
            actor: try row["actor"].decode(String?.self), command: try row["command"].decode(String?.self)
        )
        event.id = try row["id"].decode(Int64.self)
        event.previousHash = try row["previous_hash"].decode(String.self)
        event.hash = try row["hash"].decode(String.self)
        return event
    }
}

/// `wharf_append_audit`: appends an event to the chain and gives its id. Prepared once per
/// connection, as every statement of the hot paths is (parsed and planned once).
struct AppendAuditStatement: PostgresPreparedStatement {
    static let sql = "SELECT wharf_append_audit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    static let bindingDataTypes = AppendAuditStatement.argumentTypes
    typealias Row = Int64

    /// The function's arguments' types, for a statement that ends with them.
    static let argumentTypes: [PostgresDataType] = [.timestamptz, .text, .text, .int8] + Array(repeating: .text, count: 7) + [.bytea]

    let event: AuditEvent

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings()
        Self.append(event, to: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }

    /// Appends `event`'s arguments to `wharf_append_audit`: its time to the millisecond (as
    /// stored, and hashed as stored), its fields, and what `AuditChain.hash` puts after the
    /// previous hash.
    static func append(_ event: AuditEvent, to bindings: inout PostgresBindings) {
        let arguments = Arguments(event)
        bindings.append(arguments.at)
        bindings.append(event.kind.rawValue)
        bindings.append(event.outcome.rawValue)
        bindings.append(arguments.status)
        for field in arguments.fields { bindings.append(field) }
        bindings.append(arguments.tail)
    }

    /// The types of `appendColumns`' arrays, for a statement that ends with them.
    static let columnTypes: [PostgresDataType] =
        [.timestamptzArray, .textArray, .textArray, .int8Array] + Array(repeating: .textArray, count: 7) + [.byteaArray]

    /// The same arguments for several events, as one array per argument (for `unnest`).
    static func appendColumns(_ events: [AuditEvent], to bindings: inout PostgresBindings) {
        let arguments = events.map(Arguments.init)
        bindings.append(arguments.map(\.at))
        bindings.append(events.map(\.kind.rawValue))
        bindings.append(events.map(\.outcome.rawValue))
        bindings.append(NullableArray(arguments.map(\.status)))
        for field in 0..<7 { bindings.append(NullableArray(arguments.map { $0.fields[field] })) }
        bindings.append(arguments.map(\.tail))
    }

    /// What `wharf_append_audit` takes of an event beyond its kind and outcome.
    private struct Arguments {
        let at: Date
        let status: Int64?
        /// Partner, subject, fingerprint, remote address, detail, actor, command.
        let fields: [String?]
        let tail: ByteBuffer

        init(_ event: AuditEvent) {
            at = event.at.roundedToMilliseconds
            status = event.status.map(Int64.init)
            fields = [event.partner, event.subject, event.fingerprint, event.remoteAddress, event.detail, event.actor, event.command]
            tail = ByteBuffer(bytes: Array(("\n" + AuditChain.canonical(event, at: at.registryText)).utf8))
        }
    }
}
