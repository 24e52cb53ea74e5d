/// This build's version: `wharf --version`, the metrics' `wharf_build_info`.
public enum WharfVersion {
    public static let current = "0.1.0"
}
