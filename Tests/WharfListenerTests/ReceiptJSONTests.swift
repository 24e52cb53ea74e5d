import Foundation
import Testing
import WharfCore
@testable import WharfListener

@Suite struct ReceiptJSONTests {
    /// What the hand-written JSON must equal: the receipt through JSONEncoder with the
    /// options the listener used before it wrote receipts itself.
    static let reference: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func receipt(filename: String, at time: Double) -> Receipt {
        Receipt(
            id: "20261129T124058Z-076218b6", partner: "acme", filename: filename, storedName: "x", size: 1_234_567,
            sha256: String(repeating: "ab", count: 32), receivedAt: Date(timeIntervalSince1970: time), idempotencyKey: nil
        )
    }

    @Test func writesWhatJSONEncoderWrites() throws {
        var generator = SystemRandomNumberGenerator()
        let awkward = ["a.txt", "quote\"and\\backslash", "tab\tnew\nline\r", "bell\u{07}\u{1F}\u{08}\u{0C}", "slash/ok",
                       "ünïcødé-日本語-🚢", "", "\u{7F}del"]
        let random = (0..<2_000).map { _ in
            String(String.UnicodeScalarView((0..<12).compactMap { _ in
                Unicode.Scalar(UInt32.random(in: 0...0x2FF, using: &generator))
            }))
        }
        for name in awkward + random {
            let time = Double.random(in: 0...4_102_444_800, using: &generator)  // 1970 to 2100, with fractions
            let receipt = Self.receipt(filename: name, at: time)
            let expected = String(decoding: try Self.reference.encode(ReceiptJSON(receipt)), as: UTF8.self)
            #expect(ReceiptJSON(receipt).text == expected)
        }
    }

    @Test func aListIsTheReceiptsUnderOneKey() throws {
        let receipts = [Self.receipt(filename: "a", at: 0), Self.receipt(filename: "b", at: 1_764_400_000.75)]
        let body = HTTPReply.receipts(receipts).body
        let parsed = try #require(try JSONSerialization.jsonObject(with: body) as? [String: [[String: Any]]])
        #expect(parsed["receipts"]?.map { $0["filename"] as? String } == ["a", "b"])
        #expect(parsed["receipts"]?.last?["received_at"] as? String == "2025-11-29T07:06:40Z")
        #expect(String(decoding: HTTPReply.receipts([]).body, as: UTF8.self) == "{\"receipts\":[]}")
    }
}
