import Foundation
import PostgresNIO
import WharfCore

/// Resumable uploads, shared: a partner whose connection broke may resume on another node
/// (the partial file is on the shared file system).
extension PostgresStore: PartialUploadStore {
    public func createPartialUpload(_ upload: PartialUpload) throws(WharfError) {
        try withConnection { connection in
            try await connection.run("""
                INSERT INTO partial_upload (id, partner, filename, length, "offset", sha256, idempotency_key, created_at, updated_at)
                VALUES (\(upload.id), \(upload.partner), \(upload.filename), \(upload.length), \(upload.offset), \(upload.sha256),
                        \(upload.idempotencyKey), \(upload.createdAt.roundedToMilliseconds), \(upload.updatedAt.roundedToMilliseconds))
                """)
        }
    }

    public func partialUpload(id: String) throws(WharfError) -> PartialUpload? {
        try partialUploads(where: id).first
    }

    public func recordPartialUpload(id: String, offset: Int64, length: Int64?, at time: Date) throws(WharfError) {
        try withConnection { connection in
            // The offset never goes back, and a known length stays known.
            try await connection.run("""
                UPDATE partial_upload SET "offset" = greatest("offset", \(offset)), length = coalesce(length, \(length)),
                                          updated_at = \(time.roundedToMilliseconds)
                WHERE id = \(id)
                """)
        }
    }

    public func removePartialUpload(id: String) throws(WharfError) {
        try withConnection { connection in try await connection.run("DELETE FROM partial_upload WHERE id = \(id)") }
    }

    public func partialUploads() throws(WharfError) -> [PartialUpload] {
        try partialUploads(where: nil)
    }

    private func partialUploads(where id: String?) throws(WharfError) -> [PartialUpload] {
        try withConnection { connection in
            var uploads: [PartialUpload] = []
            let rows = try await connection.query("""
                SELECT id, partner, filename, length, "offset", sha256, idempotency_key, created_at, updated_at FROM partial_upload
                WHERE \(id)::text IS NULL OR id = \(id) ORDER BY created_at, id
                """, logger: Self.quiet)
            for try await (id, partner, filename, length, offset, sha256, key, created, updated)
                in rows.decode((String, String, String, Int64?, Int64, String?, String?, Millis, Millis).self) {
                uploads.append(PartialUpload(
                    id: id, partner: partner, filename: filename, length: length, offset: offset, sha256: sha256,
                    idempotencyKey: key, createdAt: created.date, updatedAt: updated.date
                ))
            }
            return uploads
        }
    }
}
