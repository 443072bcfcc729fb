// Generated from the zod schemas of attest.ts and cas-api.ts by contract.test.ts; do not edit.
// After changing them: VEIL_UPDATE_CONTRACT=1 node --test dist/contract/contract.test.js
import type { JsonSchema } from './json-check.js';

export const NONCE_ANSWER: JsonSchema = {
  "type": "object",
  "properties": {
    "nonce": {
      "type": "string",
      "pattern": "^[0-9a-f]{64}$"
    }
  },
  "required": [
    "nonce"
  ],
  "additionalProperties": false
};

export const ATTEST_ANSWER: JsonSchema = {
  "type": "object",
  "properties": {
    "command": {
      "type": "array",
      "items": {
        "type": "string",
        "pattern": "^[^\\0]*$"
      }
    },
    "environment": {
      "type": "object",
      "propertyNames": {
        "type": "string",
        "pattern": "^[^=\\0]+$"
      },
      "additionalProperties": {
        "type": "string",
        "pattern": "^[^\\0]*$"
      }
    },
    "pwd": {
      "type": "string",
      "pattern": "^[^\\0]*$"
    },
    "injectionFiles": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {
          "path": {
            "type": "string",
            "pattern": "^[^\\0]*$"
          },
          "mode": {
            "type": "integer",
            "minimum": 0,
            "maximum": 4095
          },
          "content": {
            "type": "string",
            "maxLength": 9007199254740991,
            "pattern": "^[A-Za-z0-9+/]*={0,2}$"
          }
        },
        "required": [
          "path",
          "mode",
          "content"
        ],
        "additionalProperties": false
      }
    },
    "fspf": {
      "type": "object",
      "properties": {
        "path": {
          "type": "string",
          "pattern": "^[^\\0]*$"
        },
        "key": {
          "type": "string",
          "pattern": "^[0-9a-fA-F]{64}$"
        },
        "tag": {
          "type": "string",
          "pattern": "^[0-9a-fA-F]{32}$"
        }
      },
      "additionalProperties": false
    },
    "renewal": {
      "type": "string",
      "enum": [
        "rewrite",
        "restart"
      ]
    },
    "session": {
      "type": "string"
    },
    "service": {
      "type": "string"
    },
    "attestation": {
      "type": "object",
      "properties": {
        "evidence": {
          "type": "string",
          "enum": [
            "simulation",
            "sev-snp",
            "tdx",
            "sgx-dcap"
          ]
        },
        "simulated": {
          "type": "boolean"
        },
        "platform": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$"
        },
        "tcb_status": {
          "type": "string"
        },
        "tolerated": {
          "type": "array",
          "items": {
            "type": "string"
          }
        }
      },
      "required": [
        "evidence",
        "simulated"
      ],
      "additionalProperties": false
    },
    "renew_at": {
      "type": "integer",
      "minimum": 0,
      "maximum": 9007199254740991
    }
  },
  "required": [
    "command",
    "environment",
    "pwd",
    "injectionFiles",
    "session",
    "service",
    "attestation"
  ],
  "additionalProperties": false
};

export const CAS_ERROR_BODY: JsonSchema = {
  "type": "object",
  "properties": {
    "error": {
      "type": "object",
      "properties": {
        "code": {
          "type": "string"
        },
        "message": {
          "type": "string"
        },
        "hint": {
          "type": "string"
        },
        "issues": {
          "type": "array",
          "items": {
            "type": "object",
            "properties": {
              "path": {
                "type": "string"
              },
              "message": {
                "type": "string"
              },
              "line": {
                "type": "number"
              },
              "column": {
                "type": "number"
              }
            },
            "required": [
              "path",
              "message"
            ]
          }
        }
      },
      "required": [
        "code",
        "message"
      ]
    }
  },
  "required": [
    "error"
  ]
};
