import Crypto
import Foundation

/// Random files for tests that drive the binary rather than an in-process gateway.
public struct TestGatewayFiles: Sendable {
    public let fixture: WharfHomeFixture

    public init(fixture: WharfHomeFixture) {
        self.fixture = fixture
    }

    public func randomFile(_ name: String, size: Int) throws -> (path: String, sha256: String) {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < size {
                withUnsafeBytes(of: generator.next()) { word in
                    for byte in word where offset < size {
                        buffer[offset] = byte
                        offset += 1
                    }
                }
            }
        }
        let path = fixture.directory.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
    }
}

extension TestGatewayFiles {
    /// The SHA-256 (hex) of the file at `path`, read a mebibyte at a time.
    public static func sha256(ofFile path: String) throws -> String {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var hasher = SHA256()
        while let piece = try handle.read(upToCount: 1 << 20), !piece.isEmpty { hasher.update(data: piece) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
