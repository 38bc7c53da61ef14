//! The module's error: one variant per PKCS#11 return code the module uses,
//! converted to a `CK_RV` once, at the C ABI.

use crate::iso7816::CardError;
use crate::profile::AppError;
use crate::transport::TransportError;
use cryptoki_sys::*;

macro_rules! ck_errors {
    ($($variant:ident => $code:ident),* $(,)?) => {
        /// A PKCS#11 error, named after its `CKR_*` code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
        pub enum Error {
            $(
                #[doc = stringify!($code)]
                #[error("{}", stringify!($code))]
                $variant,
            )*
        }

        impl Error {
            /// The `CK_RV` for this error.
            pub fn rv(self) -> CK_RV {
                match self {
                    $(Error::$variant => $code,)*
                }
            }
        }
    };
}

ck_errors! {
    ArgumentsBad => CKR_ARGUMENTS_BAD,
    AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
    AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
    BufferTooSmall => CKR_BUFFER_TOO_SMALL,
    CryptokiAlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
    CryptokiNotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
    DataInvalid => CKR_DATA_INVALID,
    DataLenRange => CKR_DATA_LEN_RANGE,
    FunctionCanceled => CKR_FUNCTION_CANCELED,
    DeviceError => CKR_DEVICE_ERROR,
    DeviceRemoved => CKR_DEVICE_REMOVED,
    EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
    EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
    FunctionFailed => CKR_FUNCTION_FAILED,
    FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
    GeneralError => CKR_GENERAL_ERROR,
    HostMemory => CKR_HOST_MEMORY,
    KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
    KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
    KeyIndigestible => CKR_KEY_INDIGESTIBLE,
    KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
    MechanismInvalid => CKR_MECHANISM_INVALID,
    MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
    ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
    OperationActive => CKR_OPERATION_ACTIVE,
    OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
    PinIncorrect => CKR_PIN_INCORRECT,
    PinLenRange => CKR_PIN_LEN_RANGE,
    PinLocked => CKR_PIN_LOCKED,
    SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
    SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
    SessionReadOnly => CKR_SESSION_READ_ONLY,
    SignatureInvalid => CKR_SIGNATURE_INVALID,
    SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
    SlotIdInvalid => CKR_SLOT_ID_INVALID,
    TokenNotPresent => CKR_TOKEN_NOT_PRESENT,
    TokenNotRecognized => CKR_TOKEN_NOT_RECOGNIZED,
    UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
    UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
    SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
    UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
    UserTypeInvalid => CKR_USER_TYPE_INVALID,
    ActionProhibited => CKR_ACTION_PROHIBITED,
    TemplateInconsistent => CKR_TEMPLATE_INCONSISTENT,
    RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
    UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
}

impl From<TransportError> for Error {
    fn from(err: TransportError) -> Self {
        match err {
            TransportError::CardRemoved
            | TransportError::ReaderGone
            | TransportError::NoService => Error::DeviceRemoved,
            TransportError::CardReset | TransportError::Io(_) => Error::DeviceError,
            TransportError::NoPinPad => Error::FunctionNotSupported,
        }
    }
}

impl From<CardError> for Error {
    fn from(err: CardError) -> Self {
        match err {
            CardError::Transport(transport) => transport.into(),
            CardError::Status(_) | CardError::Malformed(_) => Error::DeviceError,
            CardError::CommandTooLong(_) => Error::DataLenRange,
        }
    }
}

impl From<AppError> for Error {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Card(card) => card.into(),
            AppError::PinIncorrect(_) => Error::PinIncorrect,
            AppError::PinLocked => Error::PinLocked,
            AppError::PinLength => Error::PinLenRange,
            AppError::NotAuthenticated => Error::UserNotLoggedIn,
            AppError::DataLength => Error::DataLenRange,
            AppError::BadCiphertext => Error::EncryptedDataInvalid,
            AppError::Unsupported(_) => Error::FunctionNotSupported,
            AppError::WrongSignature => Error::DeviceError,
            AppError::PinPadCancelled => Error::FunctionCanceled,
        }
    }
}

/// Result with the module's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
