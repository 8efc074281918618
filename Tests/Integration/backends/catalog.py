"""Integration-test backend "catalog": one MCP stdio server listing 100 tools of real, well-known MCP servers.

The names, descriptions and input schemas (with their parameter descriptions) are those the servers
list (each schema in its server's own style: zod-to-json-schema for the TypeScript ones, pydantic's
`model_json_schema()` for the Python ones, hand-written JSON Schema for the rest):

  @modelcontextprotocol/server-github      26 tools (create_issue, create_pull_request, search_repositories, ...)
  @modelcontextprotocol/server-filesystem  13 tools (read_file, write_file, edit_file, list_directory, ...)
  mcp-server-git                           12 tools (git_status, git_diff_staged, git_commit, git_log, ...)
  mcp-server-time                           2 tools (get_current_time, convert_time)
  mcp-server-fetch                          1 tool  (fetch)
  @modelcontextprotocol/server-slack        8 tools (slack_post_message, slack_list_channels, ...)
  @modelcontextprotocol/server-postgres     1 tool  (query)
  mcp-server-sqlite                         6 tools (read_query, write_query, list_tables, ...)
  @modelcontextprotocol/server-puppeteer    7 tools (puppeteer_navigate, puppeteer_screenshot, ...)
  @modelcontextprotocol/server-brave-search 2 tools (brave_web_search, brave_local_search)
  @modelcontextprotocol/server-google-maps  7 tools (maps_geocode, maps_directions, ...)
  @modelcontextprotocol/server-memory       9 tools (create_entities, search_nodes, read_graph, ...)
  mcp-server-sentry                         1 tool  (get_sentry_issue)
  @modelcontextprotocol/server-everything   2 tools (echo, add)
  @modelcontextprotocol/server-gitlab       1 tool  (create_merge_request)
  linear-mcp-server                         1 tool  (linear_create_issue)
  @notionhq/notion-mcp-server               1 tool  (API-post-search)

100 distinct names in one server, many sharing words (create_*, list_*, search_*, get_*), so that a
search over them has to rank. `TOOLS` (a list of (name, description, inputSchema)) is importable
without the SDK: `from backends.catalog import TOOLS` (Tests/Integration is on sys.path in the tests).

Every tool, when called, returns one text content `called <name> <arguments as JSON, sort_keys>`
(`json.dumps(arguments, sort_keys=True)`, arguments {} when absent), so a test can tell which tool
ran with what. No tool does anything else. tools/list is one page.

`catalog.py --tools NAME[,NAME...]` serves only the named tools instead: a name of TOOLS with its
definition, any other name as an extra tool (description "Extra tool NAME.", one string parameter
`x`), answering the same way. Without the option: exactly the 100 tools of TOOLS.
"""

from __future__ import annotations

from typing import Any

JSON_SCHEMA_DRAFT7 = "http://json-schema.org/draft-07/schema#"


def _zod(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An input schema as zod-to-json-schema writes it (the TypeScript servers of modelcontextprotocol/servers)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    schema["$schema"] = JSON_SCHEMA_DRAFT7
    return schema


def _plain(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A hand-written input schema (server-slack, -puppeteer, -google-maps, -memory, -postgres, ...)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _pydantic(title: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An input schema as pydantic's model_json_schema() writes it (mcp-server-git, -fetch, -sentry)."""
    schema: dict[str, Any] = {"properties": properties}
    if required:
        schema["required"] = required
    schema["title"] = title
    schema["type"] = "object"
    return schema


def s(description: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string"}
    if description is not None:
        out["description"] = description
    out.update(extra)
    return out


def n(description: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "number"}
    if description is not None:
        out["description"] = description
    out.update(extra)
    return out


def b(description: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "boolean"}
    if description is not None:
        out["description"] = description
    out.update(extra)
    return out


def arr(items: dict[str, Any], description: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "array", "items": items}
    if description is not None:
        out["description"] = description
    out.update(extra)
    return out


def enum(values: list[str], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "enum": values}
    if description is not None:
        out["description"] = description
    return out


OWNER = s("Repository owner (username or organization)")
REPO = s("Repository name")
PULL_NUMBER = n("Pull request number")


def _pull_only() -> dict[str, Any]:
    return _zod({"owner": OWNER, "repo": REPO, "pull_number": PULL_NUMBER}, ["owner", "repo", "pull_number"])


# --------------------------------------------------------------------------- server-github (26)

GITHUB: list[tuple[str, str, dict[str, Any]]] = [
    ("create_or_update_file", "Create or update a single file in a GitHub repository", _zod({
        "owner": OWNER, "repo": REPO,
        "path": s("Path where to create/update the file"),
        "content": s("Content of the file"),
        "message": s("Commit message"),
        "branch": s("Branch to create/update the file in"),
        "sha": s("SHA of the file being replaced (required when updating existing files)"),
    }, ["owner", "repo", "path", "content", "message", "branch"])),
    ("search_repositories", "Search for GitHub repositories", _zod({
        "query": s("Search query (see GitHub search syntax)"),
        "page": n("Page number for pagination (default: 1)"),
        "perPage": n("Number of results per page (default: 30, max: 100)"),
    }, ["query"])),
    ("create_repository", "Create a new GitHub repository in your account", _zod({
        "name": s("Repository name"),
        "description": s("Repository description"),
        "private": b("Whether the repository should be private"),
        "autoInit": b("Initialize with README.md"),
    }, ["name"])),
    ("get_file_contents", "Get the contents of a file or directory from a GitHub repository", _zod({
        "owner": OWNER, "repo": REPO,
        "path": s("Path to the file or directory"),
        "branch": s("Branch to get contents from"),
    }, ["owner", "repo", "path"])),
    ("push_files", "Push multiple files to a GitHub repository in a single commit", _zod({
        "owner": OWNER, "repo": REPO,
        "branch": s("Branch to push to (e.g., 'main' or 'master')"),
        "files": arr({"type": "object", "properties": {"path": s(), "content": s()}, "required": ["path", "content"],
                      "additionalProperties": False}, "Array of files to push"),
        "message": s("Commit message"),
    }, ["owner", "repo", "branch", "files", "message"])),
    ("create_issue", "Create a new issue in a GitHub repository", _zod({
        "owner": s(), "repo": s(), "title": s(), "body": s(),
        "assignees": arr(s()), "milestone": n(), "labels": arr(s()),
    }, ["owner", "repo", "title"])),
    ("create_pull_request", "Create a new pull request in a GitHub repository", _zod({
        "owner": OWNER, "repo": REPO,
        "title": s("Pull request title"),
        "body": s("Pull request body/description"),
        "head": s("The name of the branch where your changes are implemented"),
        "base": s("The name of the branch you want the changes pulled into"),
        "draft": b("Whether to create the pull request as a draft"),
        "maintainer_can_modify": b("Whether maintainers can modify the pull request"),
    }, ["owner", "repo", "title", "head", "base"])),
    ("fork_repository", "Fork a GitHub repository to your account or specified organization", _zod({
        "owner": OWNER, "repo": REPO,
        "organization": s("Optional: organization to fork to (defaults to your personal account)"),
    }, ["owner", "repo"])),
    ("create_branch", "Create a new branch in a GitHub repository", _zod({
        "owner": OWNER, "repo": REPO,
        "branch": s("Name for the new branch"),
        "from_branch": s("Optional: source branch to create from (defaults to the repository's default branch)"),
    }, ["owner", "repo", "branch"])),
    ("list_commits", "Get list of commits of a branch in a GitHub repository", _zod({
        "owner": s(), "repo": s(), "sha": s(), "page": n(), "perPage": n(),
    }, ["owner", "repo"])),
    ("list_issues", "List issues in a GitHub repository with filtering options", _zod({
        "owner": s(), "repo": s(),
        "direction": enum(["asc", "desc"]), "labels": arr(s()), "page": n(), "per_page": n(), "since": s(),
        "sort": enum(["created", "updated", "comments"]), "state": enum(["open", "closed", "all"]),
    }, ["owner", "repo"])),
    ("update_issue", "Update an existing issue in a GitHub repository", _zod({
        "owner": s(), "repo": s(), "issue_number": n(), "title": s(), "body": s(),
        "assignees": arr(s()), "milestone": n(), "labels": arr(s()), "state": enum(["open", "closed"]),
    }, ["owner", "repo", "issue_number"])),
    ("add_issue_comment", "Add a comment to an existing issue", _zod({
        "owner": s(), "repo": s(), "issue_number": n(), "body": s(),
    }, ["owner", "repo", "issue_number", "body"])),
    ("search_code", "Search for code across GitHub repositories", _zod({
        "q": s(), "order": enum(["asc", "desc"]), "page": n(minimum=1), "per_page": n(minimum=1, maximum=100),
    }, ["q"])),
    ("search_issues", "Search for issues and pull requests across GitHub repositories", _zod({
        "q": s(), "order": enum(["asc", "desc"]), "page": n(minimum=1), "per_page": n(minimum=1, maximum=100),
        "sort": enum(["comments", "reactions", "reactions-+1", "reactions--1", "reactions-smile",
                      "reactions-thinking_face", "reactions-heart", "reactions-tada", "interactions", "created",
                      "updated"]),
    }, ["q"])),
    ("search_users", "Search for users on GitHub", _zod({
        "q": s(), "order": enum(["asc", "desc"]), "page": n(minimum=1), "per_page": n(minimum=1, maximum=100),
        "sort": enum(["followers", "repositories", "joined"]),
    }, ["q"])),
    ("get_issue", "Get details of a specific issue in a GitHub repository.", _zod({
        "owner": s(), "repo": s(), "issue_number": n(),
    }, ["owner", "repo", "issue_number"])),
    ("get_pull_request", "Get details of a specific pull request", _pull_only()),
    ("list_pull_requests", "List and filter repository pull requests", _zod({
        "owner": OWNER, "repo": REPO,
        "state": enum(["open", "closed", "all"], "State of the pull requests to return"),
        "head": s("Filter by head user or head organization and branch name"),
        "base": s("Filter by base branch name"),
        "sort": enum(["created", "updated", "popularity", "long-running"], "What to sort results by"),
        "direction": enum(["asc", "desc"], "The direction of the sort"),
        "per_page": n("Results per page (max 100)"),
        "page": n("Page number of the results"),
    }, ["owner", "repo"])),
    ("create_pull_request_review", "Create a review on a pull request", _zod({
        "owner": OWNER, "repo": REPO, "pull_number": PULL_NUMBER,
        "commit_id": s("The SHA of the commit that needs a review"),
        "body": s("The body text of the review"),
        "event": enum(["APPROVE", "REQUEST_CHANGES", "COMMENT"], "The review action to perform"),
        "comments": arr({"anyOf": [
            {"type": "object", "properties": {
                "path": s("The relative path to the file being commented on"),
                "position": n("The position in the diff where you want to add a review comment"),
                "body": s("Text of the review comment")}, "required": ["path", "position", "body"],
             "additionalProperties": False},
            {"type": "object", "properties": {
                "path": s("The relative path to the file being commented on"),
                "line": n("The line number in the file where you want to add a review comment"),
                "body": s("Text of the review comment")}, "required": ["path", "line", "body"],
             "additionalProperties": False},
        ]}, "Comments to post as part of the review (specify either position or line, not both)"),
    }, ["owner", "repo", "pull_number", "body", "event"])),
    ("merge_pull_request", "Merge a pull request", _zod({
        "owner": OWNER, "repo": REPO, "pull_number": PULL_NUMBER,
        "commit_title": s("Title for the automatic commit message"),
        "commit_message": s("Extra detail to append to automatic commit message"),
        "merge_method": enum(["merge", "squash", "rebase"], "Merge method to use"),
    }, ["owner", "repo", "pull_number"])),
    ("get_pull_request_files", "Get the list of files changed in a pull request", _pull_only()),
    ("get_pull_request_status", "Get the combined status of all status checks for a pull request", _pull_only()),
    ("update_pull_request_branch", "Update a pull request branch with the latest changes from the base branch", _zod({
        "owner": OWNER, "repo": REPO, "pull_number": PULL_NUMBER,
        "expected_head_sha": s("The expected SHA of the pull request's HEAD ref"),
    }, ["owner", "repo", "pull_number"])),
    ("get_pull_request_comments", "Get the review comments on a pull request", _pull_only()),
    ("get_pull_request_reviews", "Get the reviews on a pull request", _pull_only()),
]

# --------------------------------------------------------------------------- server-filesystem (13)

_ALLOWED = "Only works within allowed directories."
_PATH = {"path": s()}

FILESYSTEM: list[tuple[str, str, dict[str, Any]]] = [
    ("read_file",
     "Read the complete contents of a file from the file system. Handles various text encodings and provides "
     "detailed error messages if the file cannot be read. Use this tool when you need to examine the contents of "
     "a single file. Use the 'head' parameter to read only the first N lines of a file, or the 'tail' parameter "
     "to read only the last N lines of a file. " + _ALLOWED,
     _zod({"path": s(), "tail": n("If provided, returns only the last N lines of the file"),
           "head": n("If provided, returns only the first N lines of the file")}, ["path"])),
    ("read_media_file",
     "Read an image or audio file. Returns the base64 encoded data and MIME type. " + _ALLOWED,
     _zod(dict(_PATH), ["path"])),
    ("read_multiple_files",
     "Read the contents of multiple files simultaneously. This is more efficient than reading files one by one "
     "when you need to analyze or compare multiple files. Each file's content is returned with its path as a "
     "reference. Failed reads for individual files won't stop the entire operation. " + _ALLOWED,
     _zod({"paths": arr(s(), "Array of file paths to read. Each path must be a string pointing to a valid file "
                            "within allowed directories.", minItems=1)}, ["paths"])),
    ("write_file",
     "Create a new file or completely overwrite an existing file with new content. Use with caution as it will "
     "overwrite existing files without warning. Handles text content with proper encoding. " + _ALLOWED,
     _zod({"path": s(), "content": s()}, ["path", "content"])),
    ("edit_file",
     "Make line-based edits to a text file. Each edit replaces exact line sequences with new content. Returns a "
     "git-style diff showing the changes made. " + _ALLOWED,
     _zod({"path": s(),
           "edits": arr({"type": "object", "properties": {
               "oldText": s("Text to search for - must match exactly"),
               "newText": s("Text to replace with")}, "required": ["oldText", "newText"],
               "additionalProperties": False}),
           "dryRun": b("Preview changes using git-style diff format", default=False)}, ["path", "edits"])),
    ("create_directory",
     "Create a new directory or ensure a directory exists. Can create multiple nested directories in one "
     "operation. If the directory already exists, this operation will succeed silently. Perfect for setting up "
     "directory structures for projects or ensuring required paths exist. " + _ALLOWED,
     _zod(dict(_PATH), ["path"])),
    ("list_directory",
     "Get a detailed listing of all files and directories in a specified path. Results clearly distinguish "
     "between files and directories with [FILE] and [DIR] prefixes. This tool is essential for understanding "
     "directory structure and finding specific files within a directory. " + _ALLOWED,
     _zod(dict(_PATH), ["path"])),
    ("list_directory_with_sizes",
     "Get a detailed listing of all files and directories in a specified path, including sizes. Results clearly "
     "distinguish between files and directories with [FILE] and [DIR] prefixes. This tool is useful for "
     "understanding directory structure and finding specific files within a directory. " + _ALLOWED,
     _zod({"path": s(), "sortBy": {"type": "string", "enum": ["name", "size"], "default": "name",
                                   "description": "Sort entries by name or size"}}, ["path"])),
    ("directory_tree",
     "Get a recursive tree view of files and directories as a JSON structure. Each entry includes 'name', 'type' "
     "(file/directory), and 'children' for directories. Files have no children array, while directories always "
     "have a children array (which may be empty). The output is formatted with 2-space indentation for "
     "readability. " + _ALLOWED,
     _zod({"path": s(), "excludePatterns": arr(s(), default=[])}, ["path"])),
    ("move_file",
     "Move or rename files and directories. Can move files between directories and rename them in a single "
     "operation. If the destination exists, the operation will fail. Works across different directories and can "
     "be used for simple renaming within the same directory. Both source and destination must be within allowed "
     "directories.",
     _zod({"source": s(), "destination": s()}, ["source", "destination"])),
    ("search_files",
     "Recursively search for files and directories matching a pattern. Searches through all subdirectories from "
     "the starting path. The search is case-insensitive and matches partial names. Returns full paths to all "
     "matching items. Great for finding files when you don't know their exact location. Only searches within "
     "allowed directories.",
     _zod({"path": s(), "pattern": s(), "excludePatterns": arr(s(), default=[])}, ["path", "pattern"])),
    ("get_file_info",
     "Retrieve detailed metadata about a file or directory. Returns comprehensive information including size, "
     "creation time, last modified time, permissions, and type. This tool is perfect for understanding file "
     "characteristics without reading the actual content. " + _ALLOWED,
     _zod(dict(_PATH), ["path"])),
    ("list_allowed_directories",
     "Returns the list of directories that this server is allowed to access. Subdirectories within these allowed "
     "directories are also accessible. Use this to understand which directories and their nested paths are "
     "available before trying to access files.",
     {"type": "object", "properties": {}, "required": []}),
]

# --------------------------------------------------------------------------- mcp-server-git (12)

_REPO_PATH = {"repo_path": {"title": "Repo Path", "type": "string"}}
_CONTEXT = {"context_lines": {"default": 3, "title": "Context Lines", "type": "integer"}}

GIT: list[tuple[str, str, dict[str, Any]]] = [
    ("git_status", "Shows the working tree status", _pydantic("GitStatus", dict(_REPO_PATH), ["repo_path"])),
    ("git_diff_unstaged", "Shows changes in the working directory that are not yet staged",
     _pydantic("GitDiffUnstaged", {**_REPO_PATH, **_CONTEXT}, ["repo_path"])),
    ("git_diff_staged", "Shows changes that are staged for commit",
     _pydantic("GitDiffStaged", {**_REPO_PATH, **_CONTEXT}, ["repo_path"])),
    ("git_diff", "Shows differences between branches or commits",
     _pydantic("GitDiff", {**_REPO_PATH, "target": {"title": "Target", "type": "string"}, **_CONTEXT},
               ["repo_path", "target"])),
    ("git_commit", "Records changes to the repository",
     _pydantic("GitCommit", {**_REPO_PATH, "message": {"title": "Message", "type": "string"}}, ["repo_path", "message"])),
    ("git_add", "Adds file contents to the staging area",
     _pydantic("GitAdd", {**_REPO_PATH, "files": {"items": {"type": "string"}, "title": "Files", "type": "array"}},
               ["repo_path", "files"])),
    ("git_reset", "Unstages all staged changes", _pydantic("GitReset", dict(_REPO_PATH), ["repo_path"])),
    ("git_log", "Shows the commit logs", _pydantic("GitLog", {
        **_REPO_PATH,
        "max_count": {"default": 10, "title": "Max Count", "type": "integer"},
        "start_timestamp": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None,
                            "description": "Start timestamp for filtering commits. Accepts: ISO 8601 format (e.g., "
                                           "'2024-01-15T14:30:25'), relative dates (e.g., '2 weeks ago', "
                                           "'yesterday'), or absolute dates (e.g., '2024-01-15', 'Jan 15 2024')",
                            "title": "Start Timestamp"},
        "end_timestamp": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None,
                          "description": "End timestamp for filtering commits. Accepts: ISO 8601 format (e.g., "
                                         "'2024-01-15T14:30:25'), relative dates (e.g., '2 weeks ago', "
                                         "'yesterday'), or absolute dates (e.g., '2024-01-15', 'Jan 15 2024')",
                          "title": "End Timestamp"},
    }, ["repo_path"])),
    ("git_create_branch", "Creates a new branch from an optional base branch", _pydantic("GitCreateBranch", {
        **_REPO_PATH, "branch_name": {"title": "Branch Name", "type": "string"},
        "base_branch": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Base Branch"},
    }, ["repo_path", "branch_name"])),
    ("git_checkout", "Switches branches", _pydantic("GitCheckout", {
        **_REPO_PATH, "branch_name": {"title": "Branch Name", "type": "string"}}, ["repo_path", "branch_name"])),
    ("git_show", "Shows the contents of a commit", _pydantic("GitShow", {
        **_REPO_PATH, "revision": {"title": "Revision", "type": "string"}}, ["repo_path", "revision"])),
    ("git_branch", "List Git branches", _pydantic("GitBranch", {
        "repo_path": {"description": "The path to the Git repository.", "title": "Repo Path", "type": "string"},
        "branch_type": {"description": "Whether to list local branches ('local'), remote branches ('remote') or all "
                                       "branches('all').", "title": "Branch Type", "type": "string"},
        "contains": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None,
                     "description": "The commit sha that branch should contain. Do not pass anything to this param "
                                    "if no commit sha is specified", "title": "Contains"},
        "not_contains": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None,
                         "description": "The commit sha that branch should NOT contain. Do not pass anything to this "
                                        "param if no commit sha is specified", "title": "Not Contains"},
    }, ["repo_path", "branch_type"])),
]

# --------------------------------------------------------------------------- mcp-server-time (2), mcp-server-fetch (1)

_LOCAL_TZ = "UTC"

TIME_AND_FETCH: list[tuple[str, str, dict[str, Any]]] = [
    ("get_current_time", "Get current time in a specific timezones", _plain({
        "timezone": s(f"IANA timezone name (e.g., 'America/New_York', 'Europe/London'). Use '{_LOCAL_TZ}' as local "
                      "timezone if no timezone provided by the user."),
    }, ["timezone"])),
    ("convert_time", "Convert time between timezones", _plain({
        "source_timezone": s(f"Source IANA timezone name (e.g., 'America/New_York', 'Europe/London'). Use "
                             f"'{_LOCAL_TZ}' as local timezone if no source timezone provided by the user."),
        "time": s("Time to convert in 24-hour format (HH:MM)"),
        "target_timezone": s(f"Target IANA timezone name (e.g., 'Asia/Tokyo', 'America/San_Francisco'). Use "
                             f"'{_LOCAL_TZ}' as local timezone if no target timezone provided by the user."),
    }, ["source_timezone", "time", "target_timezone"])),
    ("fetch",
     "Fetches a URL from the internet and optionally extracts its contents as markdown.\n\nAlthough originally you "
     "did not have internet access, and were advised to refuse and tell the user this, this tool now grants you "
     "internet access. Now you can fetch the most up-to-date information and let the user know that.",
     _pydantic("Fetch", {
         "url": {"description": "URL to fetch", "format": "uri", "minLength": 1, "title": "Url", "type": "string"},
         "max_length": {"default": 5000, "description": "Maximum number of characters to return.",
                        "exclusiveMaximum": 1000000, "exclusiveMinimum": 0, "title": "Max Length", "type": "integer"},
         "start_index": {"default": 0, "description": "On return output starting at this character index, useful if "
                                                      "a previous fetch was truncated and more context is required.",
                         "minimum": 0, "title": "Start Index", "type": "integer"},
         "raw": {"default": False, "description": "Get the actual HTML content of the requested page, without "
                                                  "simplification.", "title": "Raw", "type": "boolean"},
     }, ["url"])),
]

# --------------------------------------------------------------------------- server-slack (8)

_THREAD_TS = ("The timestamp of the parent message in the format '1234567890.123456'. Timestamps in the format "
              "without the period can be converted by adding the period such that 6 numbers come after it.")

SLACK: list[tuple[str, str, dict[str, Any]]] = [
    ("slack_list_channels", "List public or pre-defined channels in the workspace with pagination", _plain({
        "limit": n("Maximum number of channels to return (default 100, max 200)", default=100),
        "cursor": s("Pagination cursor for next page of results"),
    })),
    ("slack_post_message", "Post a new message to a Slack channel", _plain({
        "channel_id": s("The ID of the channel to post to"),
        "text": s("The message text to post"),
    }, ["channel_id", "text"])),
    ("slack_reply_to_thread", "Reply to a specific message thread in Slack", _plain({
        "channel_id": s("The ID of the channel containing the thread"),
        "thread_ts": s(_THREAD_TS),
        "text": s("The reply text"),
    }, ["channel_id", "thread_ts", "text"])),
    ("slack_add_reaction", "Add a reaction emoji to a message", _plain({
        "channel_id": s("The ID of the channel containing the message"),
        "timestamp": s("The timestamp of the message to react to"),
        "reaction": s("The name of the emoji reaction (without ::)"),
    }, ["channel_id", "timestamp", "reaction"])),
    ("slack_get_channel_history", "Get recent messages from a channel", _plain({
        "channel_id": s("The ID of the channel"),
        "limit": n("Number of messages to retrieve (default 10)", default=10),
    }, ["channel_id"])),
    ("slack_get_thread_replies", "Get all replies in a message thread", _plain({
        "channel_id": s("The ID of the channel containing the thread"),
        "thread_ts": s(_THREAD_TS),
    }, ["channel_id", "thread_ts"])),
    ("slack_get_users", "Get a list of all users in the workspace with their basic profile information", _plain({
        "cursor": s("Pagination cursor for next page of results"),
        "limit": n("Maximum number of users to return (default 100, max 200)", default=100),
    })),
    ("slack_get_user_profile", "Get detailed profile information for a specific user", _plain({
        "user_id": s("The user's ID"),
    }, ["user_id"])),
]

# --------------------------------------------------------------------------- server-postgres (1), mcp-server-sqlite (6)

DATABASES: list[tuple[str, str, dict[str, Any]]] = [
    ("query", "Run a read-only SQL query", _plain({"sql": s()})),
    ("read_query", "Execute a SELECT query on the SQLite database", _plain({
        "query": s("SELECT SQL query to execute")}, ["query"])),
    ("write_query", "Execute an INSERT, UPDATE, or DELETE query on the SQLite database", _plain({
        "query": s("SQL query to execute")}, ["query"])),
    ("create_table", "Create a new table in the SQLite database", _plain({
        "query": s("CREATE TABLE SQL statement")}, ["query"])),
    ("list_tables", "List all tables in the SQLite database", _plain({})),
    ("describe_table", "Get the schema information for a specific table", _plain({
        "table_name": s("Name of the table to describe")}, ["table_name"])),
    ("append_insight", "Add a business insight to the memo", _plain({
        "insight": s("Business insight discovered from data analysis")}, ["insight"])),
]

# --------------------------------------------------------------------------- server-puppeteer (7)

PUPPETEER: list[tuple[str, str, dict[str, Any]]] = [
    ("puppeteer_navigate", "Navigate to a URL", _plain({
        "url": s("URL to navigate to"),
        "launchOptions": {"type": "object", "description": "PuppeteerJS LaunchOptions. Default null. If changed and "
                          "not null, browser restarts. Example: { headless: true, args: ['--no-sandbox'] }"},
        "allowDangerous": b("Allow dangerous LaunchOptions that reduce security. When false, dangerous args like "
                            "--no-sandbox will throw errors. Default false."),
    }, ["url"])),
    ("puppeteer_screenshot", "Take a screenshot of the current page or a specific element", _plain({
        "name": s("Name for the screenshot"),
        "selector": s("CSS selector for element to screenshot"),
        "width": n("Width in pixels (default: 800)"),
        "height": n("Height in pixels (default: 600)"),
        "encoded": b("If true, capture the screenshot as a base64-encoded data URI (as text) instead of binary image "
                     "content. Default false."),
    }, ["name"])),
    ("puppeteer_click", "Click an element on the page", _plain({
        "selector": s("CSS selector for element to click")}, ["selector"])),
    ("puppeteer_fill", "Fill out an input field", _plain({
        "selector": s("CSS selector for input field"), "value": s("Value to fill")}, ["selector", "value"])),
    ("puppeteer_select", "Select an element on the page with Select tag", _plain({
        "selector": s("CSS selector for element to select"), "value": s("Value to select")}, ["selector", "value"])),
    ("puppeteer_hover", "Hover an element on the page", _plain({
        "selector": s("CSS selector for element to hover")}, ["selector"])),
    ("puppeteer_evaluate", "Execute JavaScript in the browser console", _plain({
        "script": s("JavaScript code to execute")}, ["script"])),
]

# --------------------------------------------------------------------------- server-brave-search (2), server-google-maps (7)

_TRAVEL_MODE = {"type": "string", "enum": ["driving", "walking", "bicycling", "transit"],
                "description": "Travel mode (driving, walking, bicycling, transit)"}

SEARCH_AND_MAPS: list[tuple[str, str, dict[str, Any]]] = [
    ("brave_web_search",
     "Performs a web search using the Brave Search API, ideal for general queries, news, articles, and online "
     "content. Use this for broad information gathering, recent events, or when you need diverse web sources. "
     "Supports pagination, content filtering, and freshness controls. Maximum 20 results per request, with offset "
     "for pagination. ",
     _plain({"query": s("Search query (max 400 chars, 50 words)"),
             "count": n("Number of results (1-20, default 10)", default=10),
             "offset": n("Pagination offset (max 9, default 0)", default=0)}, ["query"])),
    ("brave_local_search",
     "Searches for local businesses and places using Brave's Local Search API. Best for queries related to "
     "physical locations, businesses, restaurants, services, etc. Returns detailed information including:\n"
     "- Business names and addresses\n- Ratings and review counts\n- Phone numbers and opening hours\n"
     "Use this when the query implies 'near me' or mentions specific locations. Automatically falls back to web "
     "search if no local results are found.",
     _plain({"query": s("Local search query (e.g. 'pizza near Central Park')"),
             "count": n("Number of results (1-20, default 5)", default=5)}, ["query"])),
    ("maps_geocode", "Convert an address into geographic coordinates", _plain({
        "address": s("The address to geocode")}, ["address"])),
    ("maps_reverse_geocode", "Convert coordinates into an address", _plain({
        "latitude": n("Latitude coordinate"), "longitude": n("Longitude coordinate")}, ["latitude", "longitude"])),
    ("maps_search_places", "Search for places using Google Places API", _plain({
        "query": s("Search query"),
        "location": {"type": "object", "properties": {"latitude": n(), "longitude": n()},
                     "description": "Optional center point for the search"},
        "radius": n("Search radius in meters (max 50000)"),
    }, ["query"])),
    ("maps_place_details", "Get detailed information about a specific place", _plain({
        "place_id": s("The place ID to get details for")}, ["place_id"])),
    ("maps_distance_matrix", "Calculate travel distance and time for multiple origins and destinations", _plain({
        "origins": arr(s(), "Array of origin addresses or coordinates"),
        "destinations": arr(s(), "Array of destination addresses or coordinates"),
        "mode": dict(_TRAVEL_MODE),
    }, ["origins", "destinations"])),
    ("maps_elevation", "Get elevation data for locations on the earth", _plain({
        "locations": arr({"type": "object", "properties": {"latitude": n(), "longitude": n()},
                          "required": ["latitude", "longitude"]}, "Array of locations to get elevation for"),
    }, ["locations"])),
    ("maps_directions", "Get directions between two points", _plain({
        "origin": s("Starting point address or coordinates"),
        "destination": s("Ending point address or coordinates"),
        "mode": dict(_TRAVEL_MODE),
    }, ["origin", "destination"])),
]

# --------------------------------------------------------------------------- server-memory (9)

_RELATION = {"type": "object", "properties": {
    "from": s("The name of the entity where the relation starts"),
    "to": s("The name of the entity where the relation ends"),
    "relationType": s("The type of the relation"),
}, "required": ["from", "to", "relationType"]}

MEMORY: list[tuple[str, str, dict[str, Any]]] = [
    ("create_entities", "Create multiple new entities in the knowledge graph", _plain({
        "entities": arr({"type": "object", "properties": {
            "name": s("The name of the entity"),
            "entityType": s("The type of the entity"),
            "observations": arr(s(), "An array of observation contents associated with the entity"),
        }, "required": ["name", "entityType", "observations"]}),
    }, ["entities"])),
    ("create_relations",
     "Create multiple new relations between entities in the knowledge graph. Relations should be in active voice",
     _plain({"relations": arr(dict(_RELATION))}, ["relations"])),
    ("add_observations", "Add new observations to existing entities in the knowledge graph", _plain({
        "observations": arr({"type": "object", "properties": {
            "entityName": s("The name of the entity to add the observations to"),
            "contents": arr(s(), "An array of observation contents to add"),
        }, "required": ["entityName", "contents"]}),
    }, ["observations"])),
    ("delete_entities", "Delete multiple entities and their associated relations from the knowledge graph", _plain({
        "entityNames": arr(s(), "An array of entity names to delete")}, ["entityNames"])),
    ("delete_observations", "Delete specific observations from entities in the knowledge graph", _plain({
        "deletions": arr({"type": "object", "properties": {
            "entityName": s("The name of the entity containing the observations"),
            "observations": arr(s(), "An array of observations to delete"),
        }, "required": ["entityName", "observations"]}),
    }, ["deletions"])),
    ("delete_relations", "Delete multiple relations from the knowledge graph", _plain({
        "relations": arr(dict(_RELATION), "An array of relations to delete")}, ["relations"])),
    ("read_graph", "Read the entire knowledge graph", _plain({})),
    ("search_nodes", "Search for nodes in the knowledge graph based on a query", _plain({
        "query": s("The search query to match against entity names, types, and observation content")}, ["query"])),
    ("open_nodes", "Open specific nodes in the knowledge graph by their names", _plain({
        "names": arr(s(), "An array of entity names to retrieve")}, ["names"])),
]

# --------------------------------------------------------------------------- sentry, everything, gitlab, linear, notion (6)

OTHERS: list[tuple[str, str, dict[str, Any]]] = [
    ("get_sentry_issue",
     "Retrieve and analyze a Sentry issue by ID or URL. Use this tool when you need to:\n"
     "    - Investigate production errors and crashes\n"
     "    - Access detailed stacktraces from Sentry\n"
     "    - Analyze error patterns and frequencies\n"
     "    - Get information about when issues first/last occurred\n"
     "    - Review error counts and status",
     _pydantic("GetSentryIssue", {"issue_id_or_url": {"description": "Sentry issue ID or URL to analyze",
                                                      "title": "Issue Id Or Url", "type": "string"}},
               ["issue_id_or_url"])),
    ("echo", "Echoes back the input", _zod({"message": s("Message to echo")}, ["message"])),
    ("add", "Adds two numbers", _zod({"a": n("First number"), "b": n("Second number")}, ["a", "b"])),
    ("create_merge_request", "Create a new merge request in a GitLab project", _zod({
        "project_id": s("Project ID or URL-encoded path"),
        "title": s("Merge request title"),
        "description": s("Merge request description"),
        "source_branch": s("Branch containing changes"),
        "target_branch": s("Branch to merge into"),
        "draft": b("Create as draft merge request"),
        "allow_collaboration": b("Allow commits from upstream members"),
    }, ["project_id", "title", "source_branch", "target_branch"])),
    ("linear_create_issue",
     "Creates a new Linear issue with specified details. Use this to create tickets for tasks, bugs, or feature "
     "requests. Returns the created issue's identifier and URL. Required fields are title and teamId, with optional "
     "description, priority (0-4, where 0 is no priority and 1 is urgent), and status.",
     _plain({"title": s("Issue title"), "teamId": s("Team ID"), "description": s("Issue description"),
             "priority": n("Priority (0-4)"), "status": s("Issue status")}, ["title", "teamId"])),
    ("API-post-search", "Notion | Search by title", _plain({
        "query": s("The text that the API compares page and database titles against."),
        "sort": {"type": "object", "description": "A set of criteria, `direction` and `timestamp` keys, that orders "
                 "the results. The **only** supported timestamp value is `\"last_edited_time\"`. Supported "
                 "`direction` values are `\"ascending\"` and `\"descending\"`. If `sort` is not provided, then the "
                 "most recently edited results are returned first.",
                 "properties": {"direction": enum(["ascending", "descending"], "The direction to sort."),
                                "timestamp": enum(["last_edited_time"], "The name of the timestamp to sort against.")}},
        "filter": {"type": "object", "description": "A set of criteria, `value` and `property` keys, that limits the "
                   "results to either only pages or only databases. Possible `value` values are `\"page\"` or "
                   "`\"database\"`. The only supported `property` value is `\"object\"`.",
                   "properties": {"value": enum(["page", "database"], "The value of the property to filter the "
                                                                      "results by."),
                                  "property": enum(["object"], "The name of the property to filter by.")}},
        "start_cursor": s("A `cursor` value returned in a previous response that If supplied, limits the response to "
                          "results starting after the `cursor`. If not supplied, then the first page of results is "
                          "returned. Refer to [pagination](https://developers.notion.com/reference/intro#pagination) "
                          "for more details."),
        "page_size": {"type": "integer", "description": "The number of items from the full list to include in the "
                      "response. Maximum: `100`.", "default": 100},
    })),
]

TOOLS: list[tuple[str, str, dict[str, Any]]] = (
    GITHUB + FILESYSTEM + GIT + TIME_AND_FETCH + SLACK + DATABASES + PUPPETEER + SEARCH_AND_MAPS + MEMORY + OTHERS
)
NAMES = [name for name, _, _ in TOOLS]
assert len(TOOLS) == 100 and len(set(NAMES)) == 100, (len(TOOLS), len(set(NAMES)))


def called_text(name: str, arguments: dict[str, Any] | None) -> str:
    """What calling tool `name` with `arguments` returns."""
    import json

    return f"called {name} {json.dumps(arguments or {}, sort_keys=True)}"


# --------------------------------------------------------------------------- the server


def main() -> None:
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import anyio
    import mcp_types as types
    from _common import record_pid, say
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server
    from mcp.shared.exceptions import MCPError

    tools = TOOLS
    if len(sys.argv) == 3 and sys.argv[1] == "--tools":
        defined = {name: (name, description, schema) for name, description, schema in TOOLS}
        tools = [defined.get(name, (name, f"Extra tool {name}.", _plain({"x": s()})))
                 for name in sys.argv[2].split(",")]
    elif sys.argv[1:]:
        raise SystemExit(f"usage: catalog.py [--tools NAME[,NAME...]], not {sys.argv[1:]}")
    listed = [types.Tool(name=name, description=description, input_schema=schema) for name, description, schema in tools]
    known = {name for name, _, _ in tools}

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in known:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        return types.CallToolResult(content=[types.TextContent(text=called_text(params.name, params.arguments))])

    server: Server[Any] = Server("catalog", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)

    async def run() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    record_pid("catalog")
    say("catalog backend ready")
    anyio.run(run)


if __name__ == "__main__":
    main()
