import Foundation
import PostgresNIO
import WharfCore

extension PostgresStore {
    /// Writes `tables` (a SQLite registry's `exportForCopy`) into this database, which must
    /// hold no partner, receipt, transfer or audit event yet, in one transaction: all of it
    /// or, on any refusal, nothing. Times are converted from the registry's text, flags to
    /// booleans; ids are kept and the identity sequences moved past them. Returns each
    /// table's row count as read back, which the transaction checks against what it was
    /// given before it commits.
    public func importCopy(_ tables: [TableRows]) throws(WharfError) -> [String: Int] {
        let location = location
        return try transaction { connection in
            for table in ["partner", "receipt", "transfer", "audit_event"] {
                for try await count in try await connection.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), logger: Self.quiet).decode(Int.self)
                where count > 0 {
                    throw WharfError(
                        .conflict, "the database at \(location) is not empty: its \(table) table has \(count) rows",
                        fix: "copy into a new, empty database (`createdb`), or drop this one's tables first"
                    )
                }
            }
            var counts: [String: Int] = [:]
            for table in tables {
                var types: [String: String] = [:]
                let columns = try await connection.query(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = \(table.table)",
                    logger: Self.quiet
                )
                for try await (name, type) in columns.decode((String, String).self) { types[name] = type }
                if let missing = table.columns.first(where: { types[$0] == nil }) {
                    throw WharfError(.conflict, "the database has no column \(table.table).\(missing) to copy into", fix: "run the same Wharf version on both")
                }
                let names = table.columns.map { "\"\($0)\"" }.joined(separator: ", ")
                let placeholders = (1...max(table.columns.count, 1)).map { "$\($0)" }.joined(separator: ", ")
                let sql = "INSERT INTO \(table.table) (\(names)) OVERRIDING SYSTEM VALUE VALUES (\(placeholders))"
                for row in table.rows {
                    var bindings = PostgresBindings()
                    for (column, value) in zip(table.columns, row) {
                        try Self.bind(value, as: types[column] ?? "text", to: &bindings, at: "\(table.table).\(column)")
                    }
                    try await connection.run(PostgresQuery(unsafeSQL: sql, binds: bindings))
                }
                if types["id"]?.contains("int") == true, table.columns.contains("id") {
                    try await connection.run(PostgresQuery(unsafeSQL: """
                        SELECT setval(pg_get_serial_sequence('\(table.table)', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL) FROM \(table.table)
                        """))
                }
                for try await count in try await connection.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table.table)"), logger: Self.quiet).decode(Int.self) {
                    guard count == table.rows.count else {
                        throw WharfError(.database, "\(table.table): \(table.rows.count) rows given, \(count) in the database; nothing was copied")
                    }
                    counts[table.table] = count
                }
            }
            // The chain goes on from the last event copied (or the last one pruned before).
            try await connection.run("""
                UPDATE audit_head SET
                    previous = COALESCE((SELECT previous_hash FROM audit_event ORDER BY id DESC LIMIT 1), ''),
                    hash = COALESCE((SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1),
                                    (SELECT last_pruned_hash FROM audit_anchor WHERE id = 1), '')
                WHERE id = 1
                """)
            return counts
        }
    }

    private static func bind(_ value: TableRows.Value, as type: String, to bindings: inout PostgresBindings, at column: String) throws {
        switch (value, type) {
        case (.null, _):
            bindings.appendNull()
        case (.text(let text), "timestamp with time zone"):
            guard let date = Date(registryText: text) else {
                throw WharfError(.invalidInput, "\(column) holds \(EscapedText.json(text)), which is not a time the registry writes")
            }
            bindings.append(date)
        case (.integer(let number), "boolean"):
            bindings.append(number != 0)
        case (.integer(let number), "integer"):
            bindings.append(Int32(truncatingIfNeeded: number))
        case (.integer(let number), "bigint"):
            bindings.append(number)
        case (.integer(let number), "double precision"):
            bindings.append(Double(number))
        case (.real(let number), "double precision"):
            bindings.append(number)
        case (.text(let text), "text"):
            bindings.append(text)
        case (.integer(let number), "text"):
            bindings.append(String(number))
        case (.real(let number), "text"):
            bindings.append(String(number))
        default:
            throw WharfError(.invalidInput, "\(column): a \(value) cannot go into a \(type) column")
        }
    }
}
