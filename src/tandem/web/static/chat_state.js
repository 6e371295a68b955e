// The chat page's one state object. Each group is kept by the module named above it: that
// module loads and changes it; the others read it. Nothing here fetches or draws.
export const state = {
  // chat_tree.js: the conversation as a tree, and the branch the user sees.
  conv: null, // ConversationPublic, null for a chat not created yet
  messages: new Map(), // id -> MessagePublic
  children: new Map(), // parent id ("" for roots) -> [MessagePublic], oldest first
  current: null, // the leaf the user sees (the conversation's current message)

  // chat_signals.js: this user's ratings and this chat's comparisons.
  feedback: new Map(), // message id -> current FeedbackPublic
  // Comparisons of this chat still waiting for a vote, by the id of each of their answers
  // (and of their question): shown, votable, where they stand in the thread.
  openComparisons: new Map(),
  revealed: null, // the comparison just voted on, shown with model names until the next turn

  // chat.js: the chat that is open, and who is looking at it.
  profile: null,
  me: null,
  notFound: false,
  loading: false,

  // chat_models.js: the model picker.
  models: [],
  modelInfo: new Map(), // model id -> {accepts_images, supports_tools}
  implicitModel: "", // what the server would pick without a `model` field

  // chat_stream.js: the answer being streamed.
  stream: null, // {controller, text, ui, stopped, frame, pair}

  // chat_composer.js: what goes with the next message.
  attachments: [], // [{id, mime, url, name}]
  tools: new Set(), // tools switched on in the composer: "files", "web", "code", "image"
  documents: [], // this chat's documents: FilePublic rows, status and progress
  uploadsInFlight: 0,
};
