#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Crypto
import Foundation
import WharfCore
import WharfPKI
import WharfStore

/// `wharf backup --to DIR`: a copy of a home that `wharf restore` can bring back, taken while
/// the gateway runs.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the home (registry, pki/, partners/, wharf.yml; the spool with --with-spool) to a new directory.",
        discussion: """
            Safe while `wharf serve` runs: the registry is copied with SQLite's online backup \
            (one consistent snapshot), then the files. With --with-spool the spool is copied \
            after the registry, so every receipt and transfer in the copy has its file; files \
            that arrived after the snapshot may be in it too. DIR must not exist (or be empty); \
            the copy is written beside it and renamed into place when complete, with a \
            manifest (backup.json) of every file's size and SHA-256 that `wharf restore` checks.
            """
    )

    @OptionGroup var home: HomeOptions

    @Option(help: ArgumentHelp("The directory to create.", valueName: "dir"))
    var to: String

    @Flag(help: "Also copy the spool (inbox, outgoing, sent, drop; not files being received).")
    var withSpool = false

    func run() throws {
        let home = home.resolved
        let settings = try home.settings()
        guard try home.database(settings) == .embedded else {
            throw WharfError.invalid(
                "the home \(home.path) keeps its registry in PostgreSQL, which `wharf backup` does not copy",
                fix: "back the database up with pg_dump (or the server's own backups), and pki/, partners/ and wharf.yml as files"
            )
        }
        let registry = try home.openRegistry()
        let destination = Backup.absolute(to)
        try Backup.refuseUnlessEmpty(destination, what: "the backup directory", fix: "give a new directory to --to")
        let staging = Backup.staging(for: destination)
        do {
            try Backup.makeDirectory(staging)
            let rows = try registry.backup(to: "\(staging)/\(Registry.fileName)")
            var copied = [Registry.fileName]
            var trees = ["pki", "partners"]
            if withSpool { trees += ["spool/inbox", "spool/outgoing", "spool/sent", "spool/drop"] }
            for tree in trees {
                copied += try Backup.copyTree(from: home.path, to: staging, relative: tree)
            }
            if FileManager.default.fileExists(atPath: "\(home.path)/\(ConfigurationFile.name)") {
                copied += try Backup.copyTree(from: home.path, to: staging, relative: ConfigurationFile.name)
            }
            let manifest = Backup.Manifest(
                version: WharfVersion.current, createdAt: Date(), home: home.path,
                migrations: try registry.appliedMigrations(), withSpool: withSpool,
                rows: rows,
                files: try copied.sorted().map { try Backup.describe("\(staging)/\($0)", as: $0) }
            )
            try AtomicFile.write(Listing.json(manifest) + "\n", to: "\(staging)/\(Backup.manifestName)", mode: 0o600)
            try Backup.install(staging, as: destination)
            Console.print("Backed up \(home.path) to \(destination): \(manifest.files.count) files, " +
                  manifest.rows.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }
}

/// `wharf restore --from DIR`: a backup brought back into an empty home.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Bring a backup made by `wharf backup` back into an empty home.",
        discussion: """
            Checks every file of the backup against its manifest first, then copies it beside \
            the home and renames it into place: a refused or failed restore leaves the home \
            as it was. The home must not exist or be empty. Start `wharf serve` on it \
            afterwards; a registry from an older Wharf is migrated then.
            """
    )

    @OptionGroup var home: HomeOptions

    @Option(help: ArgumentHelp("The backup directory.", valueName: "dir"))
    var from: String

    func run() throws {
        let home = home.resolved
        let source = Backup.absolute(from)
        let manifest = try Backup.verify(source)
        let target = Backup.absolute(home.path)
        try Backup.refuseUnlessEmpty(target, what: "the home", fix: "restore into a new directory with --home, or empty this one first")
        let staging = Backup.staging(for: target)
        do {
            try Backup.makeDirectory(staging)
            for file in manifest.files {
                _ = try Backup.copyTree(from: source, to: staging, relative: file.path)
            }
            for directory in ["partners", "spool"] where !FileManager.default.fileExists(atPath: "\(staging)/\(directory)") {
                try Backup.makeDirectory("\(staging)/\(directory)")
            }
            // Opening checks the registry (and refuses one newer than this build).
            _ = try Registry.open(at: "\(staging)/\(Registry.fileName)")
            try Backup.install(staging, as: target)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        Console.print("Restored \(source) into \(target): \(manifest.files.count) files, backed up \(manifest.createdAt.formatted(.iso8601)) by Wharf \(manifest.version)")
        if !manifest.withSpool { Console.print("The backup holds no spool: transfers queued in it will die for want of their files.") }
    }
}

/// What backup and restore share: the manifest, copying with fsync, installing by rename.
enum Backup {
    static let manifestName = "backup.json"

    struct Manifest: Codable {
        struct File: Codable, Equatable {
            let path: String
            let size: Int64
            let sha256: String
            let mode: Int
        }

        let version: String
        let createdAt: Date
        let home: String
        let migrations: [String]
        let withSpool: Bool
        let rows: [String: Int]
        let files: [File]
    }

    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// A hidden directory beside `path`, on the same file system, for the rename at the end.
    static func staging(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())").path
    }

    static func refuseUnlessEmpty(_ path: String, what: String, fix: String) throws(WharfError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue, ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["?"]).isEmpty else {
            throw WharfError(.conflict, "\(what) \(path) exists and is not empty", fix: fix)
        }
    }

    static func makeDirectory(_ path: String) throws(WharfError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw WharfError(.fileSystem, "cannot create \(path): \(error.localizedDescription)")
        }
    }

    /// Copies `relative` (a file, or a directory and everything under it) from `source` to
    /// `destination`, keeping permissions, fsyncing every file and directory. Returns the
    /// files copied, relative to `destination`. A missing `relative` copies nothing.
    static func copyTree(from source: String, to destination: String, relative: String) throws(WharfError) -> [String] {
        let from = "\(source)/\(relative)"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: from, isDirectory: &isDirectory) else { return [] }
        let parent = (("\(destination)/\(relative)") as NSString).deletingLastPathComponent
        try makeDirectory(parent)
        guard isDirectory.boolValue else {
            try copyFile(from, to: "\(destination)/\(relative)")
            try AtomicFile.syncDirectory(parent)
            return [relative]
        }
        try makeDirectory("\(destination)/\(relative)")
        var copied: [String] = []
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: from)) ?? []
        // Hidden entries are a writer's temporary files (AtomicFile's), never state.
        for entry in entries.sorted() where !entry.hasPrefix(".") {
            copied += try copyTree(from: source, to: destination, relative: "\(relative)/\(entry)")
        }
        try AtomicFile.syncDirectory("\(destination)/\(relative)")
        return copied
    }

    private static func copyFile(_ source: String, to destination: String) throws(WharfError) {
        var info = stat()
        guard stat(source, &info) == 0 else { throw failure("read", source) }
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw failure("open", source) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, info.st_mode & 0o777)
        guard output >= 0 else { throw failure("create", destination) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(input, &buffer, buffer.count)
            if count < 0 { if errno == EINTR { continue }; throw failure("read", source) }
            if count == 0 { break }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { write(output, $0.baseAddress! + offset, count - offset) }
                if written < 0 { if errno == EINTR { continue }; throw failure("write", destination) }
                offset += written
            }
        }
        guard fsync(output) == 0 else { throw failure("sync", destination) }
    }

    private static func failure(_ action: String, _ path: String) -> WharfError {
        let reason = String(cString: strerror(errno))
        if errno == ENOSPC { return WharfError(.insufficientStorage, "cannot \(action) \(path): \(reason)", fix: "free space there") }
        return WharfError(.fileSystem, "cannot \(action) \(path): \(reason)")
    }

    /// Size, SHA-256 and permissions of the file at `path`, recorded as `relative`.
    static func describe(_ path: String, as relative: String) throws(WharfError) -> Manifest.File {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw failure("read", path) }
        defer { try? handle.close() }
        var hash = SHA256()
        var size: Int64 = 0
        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: 1 << 16) ?? Data() } catch { throw failure("read", path) }
            if chunk.isEmpty { break }
            hash.update(data: chunk)
            size += Int64(chunk.count)
        }
        var info = stat()
        stat(path, &info)
        return Manifest.File(
            path: relative, size: size, sha256: hash.finalize().map { String(format: "%02x", $0) }.joined(), mode: Int(info.st_mode & 0o777)
        )
    }

    /// The manifest of the backup at `directory`, once every file it lists is there with its
    /// size and SHA-256 and nothing in it escapes the directory.
    static func verify(_ directory: String) throws(WharfError) -> Manifest {
        let path = "\(directory)/\(manifestName)"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WharfError(.notFound, "\(directory) is not a Wharf backup: it has no \(manifestName)", fix: "give the directory `wharf backup --to` made")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let manifest: Manifest
        do { manifest = try decoder.decode(Manifest.self, from: data) } catch {
            throw WharfError(.invalidInput, "\(path) is not a backup manifest: \(error.localizedDescription)")
        }
        guard manifest.files.contains(where: { $0.path == Registry.fileName }) else {
            throw WharfError(.invalidInput, "the backup at \(directory) holds no registry")
        }
        for file in manifest.files {
            let parts = file.path.split(separator: "/")
            guard !file.path.hasPrefix("/"), !parts.contains(".."), !parts.isEmpty else {
                throw WharfError(.invalidInput, "the manifest names \(file.path), outside the backup")
            }
            guard FileManager.default.fileExists(atPath: "\(directory)/\(file.path)") else {
                throw WharfError(.invalidInput, "the backup is incomplete: \(file.path) is missing", fix: "take a new backup")
            }
            let found = try describe("\(directory)/\(file.path)", as: file.path)
            guard found.size == file.size, found.sha256 == file.sha256 else {
                throw WharfError(
                    .invalidInput, "the backup is damaged: \(file.path) is not the file backed up (its SHA-256 differs)",
                    fix: "restore another backup"
                )
            }
        }
        return manifest
    }

    /// Renames the complete `staging` directory to `path`. When `path` is an existing empty
    /// directory (a mount point, or one made for the service's user), its entries are moved
    /// into it instead, which keeps its owner and permissions.
    static func install(_ staging: String, as path: String) throws(WharfError) {
        guard FileManager.default.fileExists(atPath: path) else {
            guard rename(staging, path) == 0 else { throw failure("rename \(staging) to", path) }
            try AtomicFile.syncDirectory((path as NSString).deletingLastPathComponent)
            return
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []
        for entry in entries.sorted() {
            guard rename("\(staging)/\(entry)", "\(path)/\(entry)") == 0 else { throw failure("move \(entry) into", path) }
        }
        try AtomicFile.syncDirectory(path)
        rmdir(staging)
    }
}
