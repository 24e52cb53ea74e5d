import Foundation
import Testing
@_spi(Fuzzing) import WharfListener

/// The fuzz target's committed seeds run through its entry point in the plain build: the
/// harness keeps compiling, and every seed (each an input the fuzzer once found or a
/// request shape worth starting from) passes its checks.
@Suite struct InboxFuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/inbox-corpus").path

    @Test func everySeedRunsThroughTheHarnessAndTheUploadsAmongThemGetReceipts() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus).sorted()
        #expect(files.count >= 10)
        var receipts: [String: Int] = [:]
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(Self.corpus)/\(file)"))
            receipts[file] = bytes.withUnsafeBytes { InboxRequestFuzzing.run($0) }
        }
        // The seeds reach the commit, where the harness checks the receipt and stored name.
        #expect(receipts["put-length"] == 1 && receipts["put-chunked"] == 1 && receipts["put-digest"] == 1)
        #expect(receipts["long-name"] == 1 && receipts["multibyte-long-name"] == 1)
        #expect(receipts["put-bad-digest"] == 0 && receipts["traversal"] == 0 && receipts["gzip-coding"] == 0)
        // A resumable creation with the whole file gets its receipt; an append is decided
        // (and checked) without one.
        #expect(receipts["resumable-create"] == 1 && receipts["resumable-append"] == 0)
    }
}
