import Foundation
import GRDB
import WharfCore

extension Registry: PartialUploadStore {
    public func createPartialUpload(_ upload: PartialUpload) throws(WharfError) {
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO partial_upload (id, partner, filename, length, "offset", sha256, idempotency_key, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    upload.id, upload.partner, upload.filename, upload.length, upload.offset, upload.sha256,
                    upload.idempotencyKey, upload.createdAt.stored, upload.updatedAt.stored,
                ]
            )
        }
    }

    public func partialUpload(id: String) throws(WharfError) -> PartialUpload? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM partial_upload WHERE id = ?", arguments: [id]).map(Self.partialUpload(from:)) }
    }

    public func recordPartialUpload(id: String, offset: Int64, length: Int64?, at time: Date) throws(WharfError) {
        try write { db in
            // The offset never goes back, and a known length stays known.
            try db.execute(
                sql: """
                    UPDATE partial_upload SET "offset" = max("offset", ?), length = coalesce(length, ?), updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [offset, length, time.stored, id]
            )
        }
    }

    public func removePartialUpload(id: String) throws(WharfError) {
        try write { db in try db.execute(sql: "DELETE FROM partial_upload WHERE id = ?", arguments: [id]) }
    }

    public func partialUploads() throws(WharfError) -> [PartialUpload] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM partial_upload ORDER BY created_at, id").map(Self.partialUpload(from:)) }
    }

    private static func partialUpload(from row: Row) -> PartialUpload {
        PartialUpload(
            id: row["id"], partner: row["partner"], filename: row["filename"], length: row["length"], offset: row["offset"],
            sha256: row["sha256"], idempotencyKey: row["idempotency_key"], createdAt: row.date("created_at"),
            updatedAt: row.date("updated_at")
        )
    }
}
