import Foundation
import NIOHTTP1
import Testing
import WharfCore
@testable import WharfListener

/// The decisions of resumable uploads alone, without sockets.
@Suite struct ResumableUploadDecisionTests {
    typealias Machine = UploadStateMachine

    static func head(
        _ method: HTTPMethod = .PUT, _ uri: String = "/inbox/a.xml", length: String? = "3", complete: String? = nil,
        uploadLength: String? = nil, offset: String? = nil, type: String? = nil, digest: String? = nil, repr: String? = nil
    ) -> Machine.Head {
        var head = Machine.Head(
            method: method.rawValue, route: InboxRoute(method: method, uri: uri), contentLength: length, chunked: false,
            hasTransferEncoding: false, contentDigest: digest, idempotencyKey: nil, expectContinue: false,
            contentDisposition: nil, contentType: type
        )
        head.uploadComplete = complete
        head.uploadLength = uploadLength
        head.uploadOffset = offset
        head.reprDigest = repr
        return head
    }

    func decided(_ head: Machine.Head, limit: Int64 = 10) -> Machine.Action {
        var machine = Machine(id: "20270115T080000Z-0000abcd", directWriteThreshold: 8 << 20, partialUploadMaxAge: .seconds(3600))
        _ = machine.headReceived(head)
        return machine.partnerDecided(.accepted(partner: "acme", uploadLimit: limit))
    }

    static let digestOfABC = "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:"
    static let sha256OfABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    @Test func structuredFieldsAreReadAsTheDraftSaysAndAnythingElseIsIgnored() {
        #expect(ResumableUpload.boolean("?1") == true)
        #expect(ResumableUpload.boolean("?0") == false)
        #expect(ResumableUpload.boolean("?1;x=y") == true)
        for other in ["1", "true", "?2", "", "yes"] { #expect(ResumableUpload.boolean(other) == nil, "\(other)") }
        #expect(ResumableUpload.integer("123") == 123)
        for other in ["-1", "1.5", "", "1234567890123456", "12a"] { #expect(ResumableUpload.integer(other) == nil, "\(other)") }
    }

    @Test func anUploadWithUploadCompleteIsReceivedAsResumableWithTheDigestsItDeclares() {
        // The whole file in one request: its Content-Digest is the whole file's.
        guard case .receive(let whole) = decided(Self.head(complete: "?1", digest: Self.digestOfABC)) else {
            Issue.record("not received")
            return
        }
        #expect(whole.resumable == ResumableUpload.Creation(complete: true, length: 3, wholeSHA256: Self.sha256OfABC, partSHA256: Self.sha256OfABC))
        // A first part: its Content-Digest is its own; Repr-Digest is the whole file's.
        guard case .receive(let part) = decided(Self.head(complete: "?0", uploadLength: "9", digest: Self.digestOfABC, repr: Self.digestOfABC)) else {
            Issue.record("not received")
            return
        }
        #expect(part.resumable == ResumableUpload.Creation(complete: false, length: 9, wholeSHA256: Self.sha256OfABC, partSHA256: Self.sha256OfABC))
        // No Upload-Complete, or one that is not a Boolean: an ordinary upload.
        for value in [nil, "yes"] {
            guard case .receive(let plain) = decided(Self.head(complete: value)) else {
                Issue.record("not received")
                continue
            }
            #expect(plain.resumable == nil)
        }
    }

    @Test func aCreationWhoseLengthsDisagreeOrPassTheLimitIsRefusedWithTheLimits() throws {
        guard case .refuse(let disagree) = decided(Self.head(complete: "?1", uploadLength: "4")) else {
            Issue.record("not refused")
            return
        }
        #expect(disagree.status == 400 && disagree.code == "inconsistent_length" && disagree.close)
        guard case .refuse(let over) = decided(Self.head(length: "3", complete: "?0", uploadLength: "11")) else {
            Issue.record("not refused")
            return
        }
        #expect(over.status == 413 && over.headers["Upload-Limit"] == "max-size=10, max-age=3600")
        #expect(over.audit?.partner == "acme" && over.confirmPartner)
    }

    @Test func uploadRoutesAreTheirOwnAndTakeOnlyTheirMethods() {
        #expect(InboxRoute(method: .HEAD, uri: "/uploads/20270115T080000Z-0000abcd") == .upload(.offset(id: "20270115T080000Z-0000abcd")))
        #expect(InboxRoute(method: .PATCH, uri: "/uploads/x1") == .upload(.append(id: "x1")))
        #expect(InboxRoute(method: .DELETE, uri: "/uploads/x1") == .upload(.cancel(id: "x1")))
        #expect(InboxRoute(method: .GET, uri: "/uploads/x1") == .methodNotAllowed(allowed: "HEAD, PATCH, DELETE"))
        #expect(InboxRoute(method: .HEAD, uri: "/uploads/../etc") == .notFound)
        #expect(InboxRoute(method: .OPTIONS, uri: "/inbox") == .options)
        #expect(InboxRoute(method: .OPTIONS, uri: "/inbox/a.xml") == .options)
        guard case .upload(.append("x1"), "acme", 10) = decided(Self.head(.PATCH, "/uploads/x1")) else {
            Issue.record("not an upload request")
            return
        }
    }

    static let upload = PartialUpload(
        id: "u1", partner: "acme", filename: "a.xml", length: 9, offset: 4, sha256: nil, idempotencyKey: nil,
        createdAt: Date(timeIntervalSince1970: 1_800_000_000)
    )

    func append(_ head: Machine.Head, to upload: PartialUpload = Self.upload, limit: Int64 = 10) -> Result<ResumableUpload.Append, Machine.Refusal> {
        ResumableUpload.append(to: upload, head: head, limit: limit, maxAge: .seconds(3600))
    }

    @Test func anAppendIsCheckedInOrderAndEachRefusalSaysWhatToSend() throws {
        let type = ResumableUpload.mediaType
        let cases: [(Machine.Head, Int, String)] = [
            (Self.head(.PATCH, "/uploads/u1", complete: "?0", offset: "4", type: "application/octet-stream"), 415, "unsupported_media_type"),
            (Self.head(.PATCH, "/uploads/u1", complete: "?0", type: type), 400, "bad_header"),
            (Self.head(.PATCH, "/uploads/u1", offset: "4", type: type), 400, "bad_header"),
            (Self.head(.PATCH, "/uploads/u1", complete: "?0", offset: "3", type: type), 409, "mismatching_upload_offset"),
            (Self.head(.PATCH, "/uploads/u1", length: nil, complete: "?0", offset: "4", type: type), 411, "length_required"),
            (Self.head(.PATCH, "/uploads/u1", length: "4", complete: "?1", offset: "4", type: type), 400, "inconsistent_length"),
            (Self.head(.PATCH, "/uploads/u1", length: "6", complete: "?0", offset: "4", type: type), 400, "inconsistent_length"),
            (Self.head(.PATCH, "/uploads/u1", complete: "?0", uploadLength: "8", offset: "4", type: type), 400, "inconsistent_length"),
        ]
        for (head, status, code) in cases {
            guard case .failure(let refusal) = append(head) else {
                Issue.record("not refused: \(head)")
                continue
            }
            #expect(refusal.status == status && refusal.code == code, "\(head): \(refusal)")
            #expect(refusal.close, "the body was not read")
        }
        guard case .failure(let mismatch) = append(Self.head(.PATCH, "/uploads/u1", complete: "?0", offset: "0", type: type)) else { return }
        #expect(mismatch.headers["Upload-Offset"] == "4")
        guard case .failure(let over) = append(Self.head(.PATCH, "/uploads/u1", complete: "?0", offset: "4", type: type), limit: 8) else { return }
        #expect(over.status == 413 && over.headers["Upload-Limit"] == "max-size=8, max-age=3600")

        #expect(try append(Self.head(.PATCH, "/uploads/u1", length: "5", complete: "?1", offset: "4", type: "\(type); x=1")).get()
            == ResumableUpload.Append(complete: true, length: 9, partSHA256: nil))
        var unknown = Self.upload
        unknown.length = nil
        #expect(try append(Self.head(.PATCH, "/uploads/u1", complete: "?0", offset: "4", type: type, digest: Self.digestOfABC), to: unknown).get()
            == ResumableUpload.Append(complete: false, length: nil, partSHA256: Self.sha256OfABC))
    }

    @Test func anUploadIsAbandonedOnlyPastItsMaximumAgeSinceItWasLastTouched() {
        var upload = Self.upload
        upload.updatedAt = upload.createdAt.addingTimeInterval(100)
        #expect(!upload.isAbandoned(maximumAge: .seconds(60), at: upload.createdAt.addingTimeInterval(150)))
        #expect(upload.isAbandoned(maximumAge: .seconds(60), at: upload.createdAt.addingTimeInterval(161)))
    }
}
