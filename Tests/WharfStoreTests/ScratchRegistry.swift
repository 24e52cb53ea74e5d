import Foundation
@testable import WharfStore

/// A registry file's path in a new temporary directory, for a test of its own.
func scratchRegistryPath(_ label: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-\(label)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return "\(directory)/\(Registry.fileName)"
}
