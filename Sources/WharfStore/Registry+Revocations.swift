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

    /// Records a certificate Wharf's CA issued to `partner`.
    public func recordIssued(serial: String, fingerprint: CertificateFingerprint, partner: PartnerName, notAfter: Date) throws(WharfError) {
        try write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO issued_certificate (serial, fingerprint, partner, not_after, issued_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [Revocation.normalizedSerial(serial), fingerprint.hex, partner.rawValue, notAfter.stored, Date().stored]
            )
        }
    }

    /// The serials of revoked certificates Wharf's CA issued, with when each was revoked:
    /// those revoked by serial, and those revoked by the fingerprint of a certificate it
    /// issued. What Wharf's CRL lists.
    public func revokedSerials() throws(WharfError) -> [(serial: String, revokedAt: Date)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT coalesce(r.serial, i.serial) AS serial, min(r.revoked_at) AS revoked_at
                FROM revoked_certificate r LEFT JOIN issued_certificate i ON i.fingerprint = r.fingerprint
                WHERE coalesce(r.serial, i.serial) IS NOT NULL
                GROUP BY coalesce(r.serial, i.serial) ORDER BY 1
                """).map { (serial: $0["serial"], revokedAt: $0.date("revoked_at")) }
        }
    }
}
