/* placeholder: being written */
#include "storage.h"
