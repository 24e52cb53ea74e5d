import Foundation
import GRDB
import WharfCore

extension Registry {
    /// Every revoked certificate, oldest first.
    public func revocations() throws(WharfError) -> [Revocation] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM revoked_certificate ORDER BY id").map(Self.revocation(from:))
        }
    }

    /// Records `revocations` and their audit event in one transaction. A certificate
    /// already revoked is left as it was; returns those newly revoked.
    @discardableResult
    public func revoke(_ revocations: [Revocation], audit: AuditEvent) throws(WharfError) -> [Revocation] {
        try write { db in
            var added: [Revocation] = []
            for revocation in revocations {
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO revoked_certificate (fingerprint, serial, partner, revoked_at, reason)
                        VALUES (?, ?, ?, ?, ?)
                        """,
                    arguments: [revocation.fingerprint?.hex, revocation.serial, revocation.partner, revocation.revokedAt.stored, revocation.reason]
                )
                if db.changesCount > 0 { added.append(revocation) }
            }
            if !added.isEmpty { try Self.insert(audit, db) }
            return added
        }
    }

    static func revocation(from row: Row) -> Revocation {
        Revocation(
            fingerprint: (row["fingerprint"] as String?).flatMap { try? CertificateFingerprint(parsing: $0) },
            serial: row["serial"], partner: row["partner"], revokedAt: row.date("revoked_at"), reason: row["reason"]
        )
    }
}
