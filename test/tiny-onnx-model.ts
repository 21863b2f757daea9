import fs from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** Words of the tiny vocabulary, after the special tokens (ids 0..4). */
const WORDS = [
  'the',
  'cat',
  'dog',
  'sat',
  'on',
  'mat',
  'red',
  'blue',
  'car',
  'road',
  'sky',
  'green',
  'tree',
  'apple',
  'river',
  'stone',
];
const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

export interface TinyModelOptions {
  /** Width of the embedding table, written to config.json as hidden_size. */
  hiddenSize?: number;
}

/**
 * Writes a BERT-shaped model small enough to build in a test, laid out as transformers.js reads a hub
 * model from disk (`<dir>/<name>/config.json`, `tokenizer.json`, `tokenizer_config.json`,
 * `onnx/model.onnx`): a WordPiece tokenizer over a 21-token vocabulary and an ONNX graph that maps
 * `input_ids` (+ `attention_mask`) to `last_hidden_state` by a Gather from a fixed pseudo-random table.
 * Mean pooling of its output makes texts that share words closer than texts that don't.
 */
export function writeTinyModel(dir: string, name: string, options: TinyModelOptions = {}): string {
  const hiddenSize = options.hiddenSize ?? 16;
  const modelDir = path.join(dir, name);
  fs.mkdirSync(path.join(modelDir, 'onnx'), { recursive: true });
  const vocab = [...SPECIAL, ...WORDS];
  const write = (file: string, value: unknown) =>
    fs.writeFileSync(path.join(modelDir, file), JSON.stringify(value, null, 2));
  write('config.json', {
    architectures: ['BertModel'],
    model_type: 'bert',
    hidden_size: hiddenSize,
    vocab_size: vocab.length,
    num_hidden_layers: 0,
    num_attention_heads: 1,
    max_position_embeddings: 64,
    pad_token_id: 0,
  });
  write('tokenizer.json', tokenizerJson(vocab));
  write('tokenizer_config.json', {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: true,
    model_max_length: 64,
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    mask_token: '[MASK]',
  });
  fs.writeFileSync(path.join(modelDir, 'onnx', 'model.onnx'), onnxModelBytes(vocab.length, hiddenSize));
  return modelDir;
}

function tokenizerJson(vocab: string[]) {
  const ids = Object.fromEntries(vocab.map((token, id) => [token, id]));
  const special = (token: string) => ({ id: token, ids: [ids[token]], tokens: [token] });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': special('[CLS]'), '[SEP]': special('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: ids,
    },
  };
}

/** A fixed table of numbers in [-1, 1) from a linear congruential generator, so every build is identical. */
function table(rows: number, columns: number): number[] {
  let state = 12345;
  return Array.from({ length: rows * columns }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
}

function onnxModelBytes(vocabSize: number, hiddenSize: number): Uint8Array {
  const { FLOAT, INT64 } = onnx.TensorProto.DataType;
  const dim = (d: string | number) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d });
  const tensorType = (elemType: number, dims: (string | number)[]) => ({
    tensorType: { elemType, shape: { dim: dims.map(dim) } },
  });
  const graph = {
    name: 'tiny-bert',
    initializer: [
      {
        name: 'word_embeddings',
        dataType: FLOAT,
        dims: [vocabSize, hiddenSize],
        floatData: table(vocabSize, hiddenSize),
      },
    ],
    input: [
      { name: 'input_ids', type: tensorType(INT64, ['batch', 'sequence']) },
      { name: 'attention_mask', type: tensorType(INT64, ['batch', 'sequence']) },
    ],
    node: [
      { opType: 'Gather', input: ['word_embeddings', 'input_ids'], output: ['gathered'], name: 'embed' },
      { opType: 'Identity', input: ['gathered'], output: ['last_hidden_state'], name: 'out' },
    ],
    output: [{ name: 'last_hidden_state', type: tensorType(FLOAT, ['batch', 'sequence', hiddenSize]) }],
  };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'brain-tests',
    opsetImport: [{ domain: '', version: 13 }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
